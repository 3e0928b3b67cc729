"""The process's figures: Prometheus metrics in a registry of this app's own, and the live
aggregates `/api/metrics` reports (seeds/000's shape).

Every figure is counted from what happened in this process since it started: HTTP requests
(by route template, never by raw path, so the label set stays bounded), assistant turns and
their NLU and dialogue time, each NLU stage call, spoken turns' stage timings, transfers by
outcome, and WebSocket connections. Listeners are plain methods, attached by the
composition root to the Assistant, the NLU pipeline, the voice services and the events.
"""

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import event as sa_event
from sqlmodel import Session

from banking.models import Event
from dialogue.assistant import TurnRecord

# Seconds; HTTP requests and turns run from about a millisecond (rules) to seconds (LLM).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
SAMPLE_WINDOW = 500  # latencies kept per NLU stage for the p95
UNMATCHED = "unmatched"  # the route label of requests no route answered (404s)


@dataclass
class RouteTiming:
    calls: int = 0
    total_ms: float = 0.0
    max_ms: float = 0.0


@dataclass
class StageFigures:
    calls: int = 0
    errors: int = 0  # calls that gave no answer: the stage was unavailable or ran out of time
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=SAMPLE_WINDOW))


class Metrics:
    def __init__(self, recent_errors: int = 20) -> None:
        self.registry = CollectorRegistry()
        self.started_at = time.time()
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self.requests = 0
        self.errors = 0
        self.auth_failures = 0
        self.fallbacks = 0
        self.ws_connects = 0
        self.ws_open_now = 0
        self.turns = 0
        self.confidence_total = 0.0
        self.decided_by: dict[str, int] = {}
        self.routes: dict[str, RouteTiming] = {}
        self.stages: dict[str, StageFigures] = {}
        self.recent_errors: deque[dict[str, Any]] = deque(maxlen=recent_errors)
        registry = self.registry
        self.http_seconds = Histogram(
            "bankbot_http_request_duration_seconds",
            "HTTP request latency, by route template, method and status code",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.turn_seconds = Histogram(
            "bankbot_turn_stage_duration_seconds",
            "Assistant turn time by stage: nlu (the cascade), dialogue (the rest), total",
            ["channel", "stage"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.nlu_stage_seconds = Histogram(
            "bankbot_nlu_stage_duration_seconds",
            "Time of each call to an NLU cascade stage",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.nlu_decisions = Counter(
            "bankbot_nlu_decisions",
            "Turns by the NLU stage whose reading the reply rests on (system: none did)",
            ["source"],
            registry=registry,
        )
        self.nlu_confidence = Histogram(
            "bankbot_nlu_confidence",
            "Confidence of the reading each turn's reply rests on",
            buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0),
            registry=registry,
        )
        self.voice_seconds = Histogram(
            "bankbot_voice_stage_duration_seconds",
            "Spoken turn stage timings: endpoint (silence before the turn), stt, "
            "stt_compute, assistant, tts_first, total (end of speech to first audio)",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.transfers = Counter(
            "bankbot_transfers",
            "Transfers by outcome (completed, refused) and refusal reason",
            ["outcome", "reason"],
            registry=registry,
        )
        self.ws_connections = Counter(
            "bankbot_websocket_connections",
            "WebSocket connections opened, by route template",
            ["route"],
            registry=registry,
        )
        self.ws_open = Gauge(
            "bankbot_websocket_open", "WebSocket connections open now", registry=registry
        )

    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self._started

    def request(self, method: str, route: str, status: int, elapsed_s: float) -> None:
        """One HTTP request answered; 5xx are errors, 401 and 403 auth failures."""
        self.http_seconds.labels(method, route, str(status)).observe(elapsed_s)
        elapsed_ms = elapsed_s * 1000
        with self._lock:
            self.requests += 1
            timing = self.routes.setdefault(route, RouteTiming())
            timing.calls += 1
            timing.total_ms += elapsed_ms
            timing.max_ms = max(timing.max_ms, elapsed_ms)
            if status in (401, 403):
                self.auth_failures += 1
            if status >= 500:
                self.errors += 1
                self.recent_errors.append(
                    {
                        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
                        "method": method,
                        "route": route,
                        "status": status,
                    }
                )

    def websocket(self, route: str, opened: bool) -> None:
        if opened:
            self.ws_connections.labels(route).inc()
            self.ws_open.inc()
            with self._lock:
                self.ws_connects += 1
                self.ws_open_now += 1
        else:
            self.ws_open.dec()
            with self._lock:
                self.ws_open_now -= 1

    def turn(self, record: TurnRecord) -> None:
        """Assistant listener: a turn answered."""
        stages = self.turn_seconds
        stages.labels(record.channel, "nlu").observe(record.nlu_ms / 1000)
        stages.labels(record.channel, "dialogue").observe(
            max(record.total_ms - record.nlu_ms, 0.0) / 1000
        )
        stages.labels(record.channel, "total").observe(record.total_ms / 1000)
        self.nlu_decisions.labels(record.source).inc()
        self.nlu_confidence.observe(record.confidence)
        with self._lock:
            self.turns += 1
            self.confidence_total += record.confidence
            self.decided_by[record.source] = self.decided_by.get(record.source, 0) + 1

    def nlu_stage(self, stage: str, elapsed_ms: float, answered: bool, fallback: bool) -> None:
        """Pipeline listener: one call to a cascade stage."""
        self.nlu_stage_seconds.labels(stage).observe(elapsed_ms / 1000)
        with self._lock:
            figures = self.stages.setdefault(stage, StageFigures())
            figures.calls += 1
            figures.errors += not answered
            figures.latencies_ms.append(elapsed_ms)
            self.fallbacks += fallback

    def voice_turn(self, timings: dict[str, int]) -> None:
        """Voice listener: a spoken turn's stage timings in ms (voice/session.py)."""
        for name, ms in timings.items():
            self.voice_seconds.labels(name.removesuffix("_ms")).observe(ms / 1000)

    def transfer_event(self, session: Session, event: Event) -> None:
        """Events listener: counts a transfer's outcome once its transaction has committed
        (a rolled-back transfer is not counted). A retry of a transfer already made writes
        no event and is not counted again."""
        if event.type == "transaction.completed":
            labels = ("completed", "none")
        elif event.type == "transaction.failed":
            labels = ("refused", str(event.payload.get("reason") or "unknown"))
        else:
            return
        counter = self.transfers.labels(*labels)
        sa_event.listen(session, "after_commit", lambda _session: counter.inc(), once=True)

    def transfer_counts(self) -> dict[tuple[str, str], float]:
        """(outcome, reason) → transfers counted so far."""
        counts: dict[tuple[str, str], float] = {}
        for metric in self.transfers.collect():
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    counts[(sample.labels["outcome"], sample.labels["reason"])] = sample.value
        return counts

    def snapshot(self) -> dict[str, Any]:
        """The in-process aggregates, copied under the lock."""
        with self._lock:
            return {
                "requests": self.requests,
                "errors": self.errors,
                "auth_failures": self.auth_failures,
                "fallbacks": self.fallbacks,
                "ws_connects": self.ws_connects,
                "ws_open": self.ws_open_now,
                "nlu": {
                    "turns": self.turns,
                    "decided_by": dict(self.decided_by),
                    "avg_confidence": (
                        round(self.confidence_total / self.turns, 4) if self.turns else None
                    ),
                },
                "routes": {
                    route: RouteTiming(t.calls, t.total_ms, t.max_ms)
                    for route, t in self.routes.items()
                },
                "stages": {
                    name: (f.calls, f.errors, list(f.latencies_ms))
                    for name, f in self.stages.items()
                },
                "recent_errors": list(self.recent_errors),
            }
