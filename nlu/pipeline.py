"""The NLU cascade: rules first, then Rasa, then the local LLM, each asked only if needed.

A stage is asked when no earlier stage is sure of the intent, or (for stages that
are cheap enough, see `Stage.fills_slots`) when a transfer still lacks its amount or
receiver. The first sure intent decides; later stages may only fill its missing slots.
"""

import time
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date
from statistics import median
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from nlu.result import BANKING_INTENTS, NLUResult
from nlu.rules import SOURCE as RULES
from nlu.rules import about_own_money

LATENCY_WINDOW = 500

# Told of every stage call: the stage's name, its time in ms, whether it answered (None
# means unavailable or out of time), and whether an earlier stage was asked first.
StageListener = Callable[[str, float, bool, bool], None]
# Told a stage's name just before the cascade asks it, in the caller's context only (a
# voice session says "One moment." before the slow LLM stage).
stage_starting: ContextVar[Callable[[str], None] | None] = ContextVar(
    "stage_starting", default=None
)


class Stage(Protocol):
    name: str
    # Whether the stage is worth asking just to fill a missing slot of a sure intent.
    fills_slots: bool

    def parse(self, text: str) -> NLUResult | None:
        """The stage's reading, or None when it is unavailable or ran out of time."""

    def status(self) -> str:
        """ "ready", "starting" or "unavailable"."""

    def close(self) -> None: ...


class NLUSettings(BaseModel):
    """The cascade's part of config.yaml; each stage has its own section besides."""

    model_config = ConfigDict(extra="forbid")

    backends: list[str]
    # A stage's reading at or above its threshold is sure; below, the next stage is asked.
    thresholds: dict[str, float]
    # A banking intent read by a learned stage in a sentence with no word about money needs
    # this confidence instead ("what about my flight" must not become a balance check).
    unevidenced_threshold: float


@dataclass
class StageStats:
    """What /admin/models reports: recent latency and today's request count."""

    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    day: date = field(default_factory=date.today)
    requests_today: int = 0

    def record(self, elapsed_ms: float) -> None:
        if date.today() != self.day:
            self.day, self.requests_today = date.today(), 0
        self.requests_today += 1
        self.latencies_ms.append(elapsed_ms)

    @property
    def median_ms(self) -> float | None:
        return round(median(self.latencies_ms), 1) if self.latencies_ms else None


class Pipeline:
    def __init__(self, settings: NLUSettings, stages: list[Stage]) -> None:
        missing = [stage.name for stage in stages if stage.name not in settings.thresholds]
        if not stages or missing:
            raise ValueError(f"NLU needs at least one stage and a threshold for each: {missing}")
        self.settings = settings
        self.stages = stages
        self.stats = {stage.name: StageStats() for stage in stages}
        self.listeners: list[StageListener] = []

    def parse(self, text: str, enough: Callable[[NLUResult], bool] | None = None) -> NLUResult:
        """The cascade's reading; `enough` may stop it early (a conversation that already
        knows what a bare answer like "500" means needs no slower stage)."""
        best: NLUResult | None = None
        asked = 0
        for stage in self.stages:
            if best is not None and enough is not None and enough(best):
                break
            if not self._worth_asking(stage, best, text):
                continue
            if (starting := stage_starting.get()) is not None:
                starting(stage.name)
            started = time.perf_counter()
            result = stage.parse(text)
            elapsed_ms = (time.perf_counter() - started) * 1000
            self.stats[stage.name].record(elapsed_ms)
            for listener in self.listeners:
                listener(stage.name, elapsed_ms, result is not None, asked > 0)
            asked += 1
            if result is not None:
                best = result if best is None else self._merge(best, result, text)
        assert best is not None, "the rules stage always answers"
        return best

    def is_sure(self, result: NLUResult, text: str) -> bool:
        """Whether the assistant may act on this reading of `text`."""
        return result.intent != "unknown" and self.decided(result, text)

    def decided(self, result: NLUResult, text: str) -> bool:
        """Sure of what was said, an out-of-scope request included: no later stage is asked."""
        threshold = self.settings.thresholds.get(result.source, 1.0)
        learned = result.source != RULES and result.intent in BANKING_INTENTS
        if learned and not about_own_money(text):
            threshold = max(threshold, self.settings.unevidenced_threshold)
        return result.confidence >= threshold

    def status(self) -> dict[str, str]:
        return {stage.name: stage.status() for stage in self.stages}

    def close(self) -> None:
        for stage in self.stages:
            stage.close()

    def _worth_asking(self, stage: Stage, best: NLUResult | None, text: str) -> bool:
        if best is None or not self.decided(best, text):
            return True
        return stage.fills_slots and _missing_slots(best)

    def _merge(self, earlier: NLUResult, later: NLUResult, text: str) -> NLUResult:
        """Keep the sure (or more confident) reading; fill its gaps from the other."""
        if self.decided(earlier, text):
            keep, other = earlier, later
        elif self.decided(later, text) or later.confidence > earlier.confidence:
            keep, other = later, earlier
        else:
            keep, other = earlier, later
        if keep.intent != other.intent:
            return keep
        return keep.model_copy(
            update={
                "amount": keep.amount if keep.amount is not None else other.amount,
                "receiver": keep.receiver or other.receiver,
                "transaction_count": keep.transaction_count or other.transaction_count,
                "category": keep.category or other.category,
                "period": keep.period or other.period,
            }
        )


def _missing_slots(result: NLUResult) -> bool:
    return result.intent == "send_money" and (result.amount is None or result.receiver is None)
