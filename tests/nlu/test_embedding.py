"""The embedding stage: MiniLM sentence vectors computed with numpy, and the nearest
training examples' vote, on a small fixed set of sentences no rule reads."""

from collections.abc import Iterator

import numpy as np
import pytest

from nlu import rules
from nlu.embedding import HEADS, LAYERS, MODEL_FILE, Matrix, load_safetensors
from nlu.examples import training_examples
from nlu.model_files import MODELS_DIR, require
from nlu.result import NLUResult
from nlu.rules import normalise
from nlu.stages import EmbeddingStage, contradicted, weighed
from server import load_settings

LOAD_WITHIN_S = 300  # the first run embeds data/nlu.yml (about a minute), later ones read it


@pytest.fixture(scope="module")
def stage() -> Iterator[EmbeddingStage]:
    embedding = EmbeddingStage(load_settings().embedding)
    assert embedding.wait_until_loaded(LOAD_WITHIN_S), embedding.status()
    yield embedding
    embedding.close()


def _reference(w: dict[str, Matrix], ids: list[int]) -> Matrix:
    """all-MiniLM-L6-v2 the plain way, one sentence, float64: what the encoder must match."""

    def norm(x: np.ndarray, prefix: str) -> np.ndarray:
        x = x - x.mean(-1, keepdims=True)
        scaled = x / np.sqrt((x**2).mean(-1, keepdims=True) + 1e-12)
        return scaled * w[prefix + ".LayerNorm.weight"] + w[prefix + ".LayerNorm.bias"]

    def dense(x: np.ndarray, prefix: str) -> np.ndarray:
        return x @ w[prefix + ".weight"].astype(np.float64).T + w[prefix + ".bias"]

    def erf(z: np.ndarray) -> np.ndarray:  # Abramowitz and Stegun 7.1.26, error < 2e-7
        t = 1 / (1 + 0.3275911 * np.abs(z))
        poly = t * (
            0.254829592
            + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
        )
        return np.sign(z) * (1 - poly * np.exp(-z * z))

    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][: len(ids)]
        + w["embeddings.token_type_embeddings.weight"][0]
    ).astype(np.float64)
    x = norm(x, "embeddings")
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        q, k, v = (
            dense(x, f"{p}attention.self.{part}").reshape(len(ids), HEADS, -1).transpose(1, 0, 2)
            for part in ("query", "key", "value")
        )
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1])
        attention = np.exp(scores - scores.max(-1, keepdims=True))
        attention /= attention.sum(-1, keepdims=True)
        context = (attention @ v).transpose(1, 0, 2).reshape(len(ids), -1)
        x = norm(x + dense(context, p + "attention.output.dense"), p + "attention.output")
        inner = dense(x, p + "intermediate.dense")
        x = norm(
            x + dense(inner * (1 + erf(inner / np.sqrt(2))) / 2, p + "output.dense"), p + "output"
        )
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)


def test_the_encoder_matches_a_plain_forward_pass_on_every_training_sentence(
    stage: EmbeddingStage,
) -> None:
    """The fast encoder (onnxruntime, fused attention) against the textbook computation, on
    each sentence of data/nlu.yml alone (a live turn) and in the index's batches."""
    weights = load_safetensors(require(MODEL_FILE, MODELS_DIR))
    texts = [normalise(text) for text, _ in training_examples()]
    batched = stage.encoder.encode(texts)
    for text, vector in zip(texts, batched, strict=True):
        expected = _reference(weights, stage.encoder.tokenizer.encode(text).ids)
        alone = stage.encoder.encode([text])[0]
        assert min(float(alone @ expected), float(vector @ expected)) >= 0.9999, text


def test_paraphrases_are_nearer_than_other_requests(stage: EmbeddingStage) -> None:
    vectors = stage.encoder.encode(
        ["how much money do i have", "what is my account balance", "book a table for two"]
    )
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > 0.5 > similarity[0, 2]


def test_a_sentence_reads_the_same_alone_and_in_a_batch(stage: EmbeddingStage) -> None:
    """Padding in a batch must not change a sentence's vector."""
    alone = stage.encoder.encode(["show me what i spent"])[0]
    batched = stage.encoder.encode(["hi", "show me what i spent", "a much longer sentence here"])
    assert np.allclose(alone, batched[1], atol=1e-5)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("do i have enough in my account to buy a new phone", "check_balance"),
        ("what does my account look like money wise", "check_balance"),
        ("there's a card payment here i never made", "report_problem"),
        ("i got charged two times for one coffee", "report_problem"),
        ("how do i order a new debit card", "unknown"),
        ("what's the weather like in paris tomorrow", "unknown"),
        ("can you recommend a good italian restaurant", "unknown"),
    ],
)
def test_the_nearest_examples_vote(stage: EmbeddingStage, text: str, intent: str) -> None:
    result = stage.parse(text)
    assert result is not None
    assert (result.intent, result.source) == (intent, "embedding")
    assert result.confidence >= 0.6  # sure: the cascade stops here


def test_a_transfer_reading_carries_the_rules_slots(stage: EmbeddingStage) -> None:
    result = stage.parse("could you move five hundred bucks over to ravi")
    assert result is not None and result.intent == "send_money"
    assert (result.amount, result.receiver) == (500, "ravi")


def test_an_llm_guess_the_examples_do_not_support_falls_below_the_threshold(
    stage: EmbeddingStage,
) -> None:
    text = "which movies are playing tonight"
    guess = NLUResult(intent="check_spending", confidence=0.7, source="llm")
    supported = NLUResult(intent="check_balance", confidence=0.7, source="llm")
    assert weighed(guess, stage.vote(text), 0.35).confidence < 0.35
    balance = stage.vote("is there enough cash in my account for rent")
    assert weighed(supported, balance, 0.35).confidence == 0.7


def test_a_rules_reading_the_examples_contradict_is_not_sure(stage: EmbeddingStage) -> None:
    check = stage.settings
    statement = "please send me my tax certificate for the interest earned"
    read = rules.parse(statement)
    assert (read.intent, read.confidence) == ("transaction_history", 0.9)
    assert contradicted(read, stage.vote(statement), check).confidence <= check.rules_min_support
    command = "show me my last five transactions please"
    read = rules.parse(command)
    assert contradicted(read, stage.vote(command), check) == read
