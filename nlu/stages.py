"""The stages of the cascade, each adapting one backend to `pipeline.Stage`."""

import functools
import logging
import threading
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from nlu import rules
from nlu.embedding import Matrix, SentenceEncoder
from nlu.examples import training_examples
from nlu.llm import LLMBackend, LLMSettings
from nlu.llm_client import LLMClient
from nlu.model_files import ModelFileError, require
from nlu.numbers import normalise_numbers, parse_money, parse_number
from nlu.pipeline import Stage
from nlu.rasa import RasaBackend, RasaSettings, rasa_endpoint
from nlu.result import BANKING_INTENTS, KNOWN_INTENTS, REPORT_PROBLEM, NLUResult
from nlu.semantic import EmbeddingSettings, NearestExamples, Vote

log = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"


class BackendSettings(BaseModel):
    """The stages' own settings: config.yaml's `rasa:` and `llm:` sections."""

    model_config = ConfigDict(extra="forbid")

    rasa: RasaSettings
    llm: LLMSettings
    embedding: EmbeddingSettings


class RulesStage:
    """Deterministic patterns: microseconds, always available.

    A banking reading of a longer sentence is checked against the embedding stage's vote
    when that stage runs (`contradicted`): the patterns match words, and a statement or a
    question about something else can hold the same words ("the transaction at the store
    took forever").
    """

    name = rules.SOURCE
    fills_slots = True

    def __init__(self, check: EmbeddingSettings | None = None) -> None:
        self._check = check
        # The embedding stage's vote, set by build_stages when that stage runs too.
        self.evidence: Callable[[str], Vote | None] | None = None

    def parse(self, text: str) -> NLUResult:
        result = rules.parse(text)
        check = self._check
        if self.evidence is None or check is None or result.intent not in BANKING_INTENTS:
            return result
        if len(text.split()) < check.rules_check_words:
            return result
        return contradicted(result, self.evidence(text), check)

    def status(self) -> str:
        return "ready"

    def close(self) -> None:
        """Nothing to release."""


class RasaStage:
    """Rasa NLU (its child process or a shared server): intents from Rasa, numbers read by
    our own code.

    The text reaches Rasa with numbers already as digits (the form most of its training
    data has). Amount, receiver and count come from the rules' slot reader first and from
    Rasa's entities where that found nothing; a spending question's category and period
    from the rules' reader alone.
    """

    name = "rasa"
    fills_slots = True

    def __init__(self, settings: RasaSettings) -> None:
        self._settings = settings
        # The embedding stage's vote, set by build_stages when that stage runs too.
        self.evidence: Callable[[str], Vote | None] | None = None
        self.server = rasa_endpoint(settings)
        self.backend = RasaBackend(self.server)
        self.server.start()

    def parse(self, text: str) -> NLUResult | None:
        answer = self.backend.parse(normalise_numbers(text.lower()))
        if answer is None:
            return None
        result = reading(text, answer.intent, answer.confidence, self.name, answer.entities)
        if result.intent == "unknown" or self.evidence is None:
            return result
        return weighed(result, self.evidence(text), self._settings.min_support)

    def status(self) -> str:
        return "ready" if self.server.is_ready else "starting or unavailable"

    def close(self) -> None:
        self.backend.close()
        self.server.stop()


def reading(
    text: str, intent: str, confidence: float, source: str, entities: dict[str, str] | None = None
) -> NLUResult:
    """A learned stage's intent with the slots read by our own code (the rules' reader);
    the stage's own entities fill only what that reader missed."""
    intent = intent if intent in KNOWN_INTENTS else "unknown"
    entities = entities or {}
    amount, receiver, count = rules.slots(text)
    if amount is None and "amount" in entities:
        amount = parse_money(entities["amount"]) or parse_number(entities["amount"])
    if count is None and "count" in entities:
        parsed = parse_number(entities["count"])
        count = int(parsed) if parsed is not None and parsed == int(parsed) > 0 else None
    category, period = rules.spending_slots(text) if intent == "check_spending" else (None, None)
    return NLUResult(
        intent=intent,
        amount=amount if intent == "send_money" else None,
        receiver=(receiver or entities.get("receiver")) if intent == "send_money" else None,
        transaction_count=count if intent == "transaction_history" else None,
        category=category,
        period=period,
        confidence=round(confidence, 4),
        source=source,
    )


def contradicted(result: NLUResult, vote: Vote | None, check: EmbeddingSettings) -> NLUResult:
    """A rules reading is not sure when the nearest examples give its intent almost none of
    their vote and surely read the sentence as out of scope or as a problem: its confidence
    becomes that share, and the embedding stage's reading decides."""
    if vote is None or vote.intent not in ("unknown", REPORT_PROBLEM):
        return result
    support = vote.shares.get(result.intent, 0.0)
    if support > check.rules_min_support or vote.confidence < check.rules_contrary:
        return result
    return result.model_copy(update={"confidence": round(support, 4)})


def weighed(result: NLUResult, vote: Vote | None, min_support: float) -> NLUResult:
    """A Rasa or LLM reading keeps its confidence only when the nearest training examples
    give its intent at least `min_support` of their vote; otherwise that share becomes its
    confidence, which falls below the threshold: a guess is not understood rather than
    acted on. (Rasa's softmax is sure of banking intents in sentences unlike any of its
    examples: "link my aadhaar to my bank account" was a balance check at 0.96.)"""
    support = 0.0 if vote is None else vote.shares.get(result.intent, 0.0)
    if support >= min_support:
        return result
    return result.model_copy(update={"confidence": round(support, 4)})


class EmbeddingStage:
    """Nearest training examples by MiniLM sentence embedding (nlu/semantic.py).

    Embedding the training examples takes a minute the first time (then they are cached),
    so the stage loads in the background and answers None until it is ready.
    """

    name = "embedding"
    fills_slots = False

    def __init__(self, settings: EmbeddingSettings, models_dir: Path = MODELS_DIR) -> None:
        self.encoder = SentenceEncoder(models_dir)
        self.settings = settings
        self._index: NearestExamples | None = None
        self._failure: str | None = None
        self._loader = threading.Thread(target=self._load, name="embedding-loader", daemon=True)
        self._loader.start()

    def wait_until_loaded(self, timeout_s: float) -> bool:
        self._loader.join(timeout_s)
        return self._index is not None

    @property
    def index(self) -> NearestExamples | None:
        """The embedded training examples; None while loading."""
        return self._index

    def vote(self, text: str) -> Vote | None:
        """The nearest examples' vote on `text`; None while loading."""
        index = self._index
        if index is None:
            return None
        return index.vote(self.embed(rules.normalise(text)))

    def parse(self, text: str) -> NLUResult | None:
        vote = self.vote(text)
        return None if vote is None else reading(text, vote.intent, vote.confidence, self.name)

    def status(self) -> str:
        if self._index is not None:
            return "ready"
        return "unavailable" if self._failure else "starting"

    def close(self) -> None:
        self._loader.join()

    @functools.lru_cache(maxsize=256)  # noqa: B019 (one stage per process, kept for its life)
    def embed(self, words: str) -> Matrix:
        """A cascade asks for a sentence's vector twice (its own reading, the LLM's check)."""
        vector: Matrix = self.encoder.encode([words])[0]
        return vector

    def _load(self) -> None:
        try:
            examples = [(rules.normalise(text), intent) for text, intent in training_examples()]
            self._index = NearestExamples(self.encoder, examples, self.settings)
        except (OSError, ValueError) as error:
            self._failure = str(error)
            log.error("the embedding stage is unavailable: %s", error)


class LLMStage:
    """The local LLM, last resort: about a second a call, so never asked just to fill a slot.

    The model file is checked when the stage is built, so a missing or truncated file stops
    the start with a message naming it; loading it (~20 s with the prompt warm-up) happens
    in the background, and until then the stage answers None. `switch()` loads another
    manifest model and swaps it in. With `llm.url` the stage asks that shared server instead
    (nlu/llm_client.py): no model file is needed here, and switching is done at the server.
    """

    name = "llm"
    fills_slots = False

    def __init__(self, settings: LLMSettings, models_dir: Path = MODELS_DIR) -> None:
        if not settings.url:
            require(settings.model, models_dir)
        self._settings = settings
        # The embedding stage's vote, set by build_stages when that stage runs too.
        self.evidence: Callable[[str], Vote | None] | None = None
        self._models_dir = models_dir
        self._backend: LLMBackend | LLMClient | None = None
        self._failure: str | None = None
        self.model_id = settings.model
        self._loader = threading.Thread(target=self._load, name="llm-loader", daemon=True)
        self._loader.start()

    def wait_until_loaded(self, timeout_s: float) -> bool:
        self._loader.join(timeout_s)
        return self._backend is not None

    def parse(self, text: str) -> NLUResult | None:
        backend = self._backend
        result = None if backend is None else backend.parse(text)
        if result is None or result.intent == "unknown" or self.evidence is None:
            return result
        return weighed(result, self.evidence(text), self._settings.min_support)

    def status(self) -> str:
        if self._backend is not None:
            return "ready"
        return "unavailable" if self._failure else "starting"

    def probe(self) -> float | None:
        """LLMBackend.probe() of the loaded model; None while none is loaded."""
        backend = self._backend
        return None if backend is None else backend.probe()

    def switch(self, model_id: str) -> str:
        """Load `model_id` and make it the stage's model; returns the previous model's id."""
        if self._settings.url:
            raise ModelFileError(f"the LLM is the shared server {self._settings.url}: switch there")
        backend = LLMBackend(
            self._settings.model_copy(update={"model": model_id}), self._models_dir
        )
        previous, old = self.model_id, self._backend
        self._backend, self.model_id, self._failure = backend, model_id, None
        if old is not None:
            old.close()
        return previous

    def close(self) -> None:
        self._loader.join()
        if self._backend is not None:
            self._backend.close()

    def _load(self) -> None:
        if self._settings.url:  # ready once the server has read the prompt (or is down)
            client = LLMClient(self._settings)
            if not client.warm_up():
                log.error("the LLM server %s does not answer yet", self._settings.url)
            self._backend = client
            return
        try:
            self._backend = LLMBackend(self._settings, self._models_dir)
        except (ModelFileError, ValueError) as error:
            self._failure = str(error)
            log.error("the LLM stage is unavailable: %s", error)


def build_stages(backends: list[str], settings: BackendSettings) -> list[Stage]:
    """The configured stages, in order, started."""
    factories: dict[str, Callable[[], Stage]] = {
        "rules": lambda: RulesStage(settings.embedding),
        "embedding": lambda: EmbeddingStage(settings.embedding),
        "rasa": lambda: RasaStage(settings.rasa),
        "llm": lambda: LLMStage(settings.llm),
    }
    unknown = [name for name in backends if name not in factories]
    if unknown:
        raise ValueError(f"unknown NLU backends {unknown}; available: {sorted(factories)}")
    stages = [factories[name]() for name in backends]
    embedding = next((s for s in stages if isinstance(s, EmbeddingStage)), None)
    for stage in stages:
        if isinstance(stage, (RulesStage, RasaStage, LLMStage)) and embedding is not None:
            stage.evidence = embedding.vote
    return stages
