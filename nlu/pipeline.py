"""The NLU pipeline: the stages a sentence passes through, first confident answer wins.

Only the rules stage exists so far; Rasa and the local LLM join as further stages
behind the same `parse()` (see ../shared/ARCHITECTURE.md).
"""

from collections.abc import Callable, Sequence

from pydantic import BaseModel, ConfigDict

from nlu import rules
from nlu.result import NLUResult

Stage = Callable[[str], NLUResult]

STAGES: dict[str, Stage] = {"rules": rules.parse}


class NLUSettings(BaseModel):
    """Values come from config.yaml, which documents each key."""

    model_config = ConfigDict(extra="forbid")

    backends: list[str]
    # A stage's answer at or above this confidence is final; below it the next stage
    # is asked, and if no stage is sure the assistant says it did not understand.
    confidence_threshold: float


class Pipeline:
    def __init__(self, settings: NLUSettings) -> None:
        unknown = [name for name in settings.backends if name not in STAGES]
        if unknown or not settings.backends:
            raise ValueError(f"unknown NLU backends {unknown}; available: {sorted(STAGES)}")
        self.settings = settings
        self.stages: Sequence[Stage] = [STAGES[name] for name in settings.backends]

    def parse(self, text: str) -> NLUResult:
        """The first confident stage's result, or the most confident one if none is sure."""
        best: NLUResult | None = None
        for stage in self.stages:
            result = stage(text)
            if result.confidence >= self.settings.confidence_threshold:
                return result
            if best is None or result.confidence > best.confidence:
                best = result
        assert best is not None  # the constructor guarantees at least one stage
        return best

    def is_confident(self, result: NLUResult) -> bool:
        return result.intent != "unknown" and (
            result.confidence >= self.settings.confidence_threshold
        )
