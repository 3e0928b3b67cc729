"""The embedding stage's classifier: nearest training examples by sentence embedding.

Every example of data/nlu.yml (out-of-scope and hard negatives included, as `unknown`) is
embedded once; a sentence's reading is a similarity-weighted vote of its `neighbours`
nearest examples. The vote share of the winning intent is the confidence, so a sentence
between intents, or far from every example, gets a low one. The example vectors are
cached under .cache/embeddings/, keyed by the model and the examples.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict

from nlu.embedding import Matrix, SentenceEncoder

CACHE_DIR = Path(__file__).resolve().parents[1] / ".cache" / "embeddings"


class EmbeddingSettings(BaseModel):
    """config.yaml's `embedding:` section, which documents each key."""

    model_config = ConfigDict(extra="forbid")

    neighbours: int
    temperature: float
    # Below this cosine similarity to its nearest example a sentence is too far from
    # everything we know: unknown.
    min_similarity: float
    # A banking reading of the rules in a sentence of at least this many words is checked
    # against the vote (shorter ones are the documented commands, and few words give a
    # vote little to go on) ...
    rules_check_words: int
    # ... and is not sure when the nearest examples give its intent at most this share and
    # read the sentence, with at least `rules_contrary` of their vote, as out of scope or
    # as a problem with a payment.
    rules_min_support: float
    rules_contrary: float


@dataclass(frozen=True)
class Vote:
    intent: str
    confidence: float
    # Every intent's share of the vote (sums to 1): what the LLM's reading is checked against.
    shares: dict[str, float]


class NearestExamples:
    def __init__(
        self,
        encoder: SentenceEncoder,
        examples: list[tuple[str, str]],
        settings: EmbeddingSettings,
        cache_dir: Path = CACHE_DIR,
    ) -> None:
        self.settings = settings
        self.labels = np.array([intent for _, intent in examples])
        self.vectors = _cached_vectors(encoder, [text for text, _ in examples], cache_dir)

    def vote(self, vector: Matrix, exclude: NDArray[np.bool_] | None = None) -> Vote:
        """The reading of one embedded sentence; `exclude` leaves examples out (k-fold)."""
        similarity = self.vectors @ vector
        if exclude is not None:
            similarity[exclude] = -1.0
        k = min(self.settings.neighbours, len(similarity))
        nearest = np.argpartition(-similarity, k - 1)[:k]
        weights = np.exp(
            (similarity[nearest] - similarity[nearest].max()) / self.settings.temperature
        )
        shares: dict[str, float] = {}
        for label, weight in zip(self.labels[nearest], weights / weights.sum(), strict=True):
            shares[str(label)] = shares.get(str(label), 0.0) + float(weight)
        intent = max(shares, key=lambda name: shares[name])
        if similarity[nearest].max() < self.settings.min_similarity:
            return Vote("unknown", 1.0, shares)
        return Vote(intent, shares[intent], shares)


def _cached_vectors(encoder: SentenceEncoder, texts: list[str], cache_dir: Path) -> Matrix:
    digest = hashlib.sha256(encoder.fingerprint.encode())
    for text in texts:
        digest.update(text.encode() + b"\n")
    path = cache_dir / f"{digest.hexdigest()[:32]}.npy"
    if path.is_file():
        vectors: Matrix = np.load(path)
        return vectors
    vectors = encoder.encode(texts)
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npy")
    np.save(partial, vectors)
    partial.replace(path)
    return vectors
