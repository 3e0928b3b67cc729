"""The stages of the cascade, each adapting one backend to `pipeline.Stage`."""

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from nlu import rules
from nlu.llm import LLMBackend, LLMSettings
from nlu.model_files import ModelFileError, require
from nlu.numbers import normalise_numbers, parse_money, parse_number
from nlu.pipeline import Stage
from nlu.rasa import RasaBackend, RasaServer, RasaSettings
from nlu.result import BANKING_INTENTS, DIALOGUE_ACTS, NLUResult

log = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"


class BackendSettings(BaseModel):
    """The stages' own settings: config.yaml's `rasa:` and `llm:` sections."""

    model_config = ConfigDict(extra="forbid")

    rasa: RasaSettings
    llm: LLMSettings


class RulesStage:
    """Deterministic patterns: microseconds, always available."""

    name = rules.SOURCE
    fills_slots = True

    def parse(self, text: str) -> NLUResult:
        return rules.parse(text)

    def status(self) -> str:
        return "ready"

    def close(self) -> None:
        """Nothing to release."""


class RasaStage:
    """Rasa NLU in its child process: intents from Rasa, numbers read by our own code.

    The text reaches Rasa with numbers already as digits (the form most of its training
    data has). Amount, receiver and count come from the rules' slot reader first and from
    Rasa's entities where that found nothing; a spending question's category and period
    from the rules' reader alone.
    """

    name = "rasa"
    fills_slots = True

    def __init__(self, settings: RasaSettings) -> None:
        self.server = RasaServer(settings)
        self.backend = RasaBackend(self.server)
        self.server.start()

    def parse(self, text: str) -> NLUResult | None:
        answer = self.backend.parse(normalise_numbers(text.lower()))
        if answer is None:
            return None
        intent = answer.intent if answer.intent in BANKING_INTENTS + DIALOGUE_ACTS else "unknown"
        amount, receiver, count = rules.slots(text)
        entities = answer.entities
        if amount is None and "amount" in entities:
            amount = parse_money(entities["amount"]) or parse_number(entities["amount"])
        if count is None and "count" in entities:
            parsed = parse_number(entities["count"])
            count = int(parsed) if parsed is not None and parsed == int(parsed) > 0 else None
        category, period = (
            rules.spending_slots(text) if intent == "check_spending" else (None, None)
        )
        return NLUResult(
            intent=intent,
            amount=amount if intent == "send_money" else None,
            receiver=(receiver or entities.get("receiver")) if intent == "send_money" else None,
            transaction_count=count if intent == "transaction_history" else None,
            category=category,
            period=period,
            confidence=round(answer.confidence, 4),
            source=self.name,
        )

    def status(self) -> str:
        return "ready" if self.server.is_ready else "starting or unavailable"

    def close(self) -> None:
        self.backend.close()
        self.server.stop()


class LLMStage:
    """The local LLM, last resort: about a second a call, so never asked just to fill a slot.

    The model file is checked when the stage is built, so a missing or truncated file stops
    the start with a message naming it; loading it (~20 s with the prompt warm-up) happens
    in the background, and until then the stage answers None. `switch()` loads another
    manifest model and swaps it in.
    """

    name = "llm"
    fills_slots = False

    def __init__(self, settings: LLMSettings, models_dir: Path = MODELS_DIR) -> None:
        require(settings.model, models_dir)
        self._settings = settings
        self._models_dir = models_dir
        self._backend: LLMBackend | None = None
        self._failure: str | None = None
        self.model_id = settings.model
        self._loader = threading.Thread(target=self._load, name="llm-loader", daemon=True)
        self._loader.start()

    def wait_until_loaded(self, timeout_s: float) -> bool:
        self._loader.join(timeout_s)
        return self._backend is not None

    def parse(self, text: str) -> NLUResult | None:
        backend = self._backend
        return None if backend is None else backend.parse(text)

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
        try:
            self._backend = LLMBackend(self._settings, self._models_dir)
        except (ModelFileError, ValueError) as error:
            self._failure = str(error)
            log.error("the LLM stage is unavailable: %s", error)


def build_stages(backends: list[str], settings: BackendSettings) -> list[Stage]:
    """The configured stages, in order, started."""
    factories: dict[str, Callable[[], Stage]] = {
        "rules": RulesStage,
        "rasa": lambda: RasaStage(settings.rasa),
        "llm": lambda: LLMStage(settings.llm),
    }
    unknown = [name for name in backends if name not in factories]
    if unknown:
        raise ValueError(f"unknown NLU backends {unknown}; available: {sorted(factories)}")
    return [factories[name]() for name in backends]
