"""GET /health/detailed: each component's status and the latency of a cheap real probe.

What each probe does:

- database: `SELECT 1` on a pooled connection (a round trip to the server or file);
- session_store: Redis `PING` (and `INFO memory`), or for the in-process store a save and
  load of a probe key;
- rasa: a parse of "hello" by the running Rasa server (~5 ms);
- llm: tokenizing a short text with the loaded model (microseconds; a completion takes
  about a second, so `inference_latency_ms` is the median of the cascade's recent real
  calls instead);
- stt: transcribing one second of quiet noise (the short path a real utterance takes) and
- tts: synthesising a short phrase past the speech cache — both hundreds of milliseconds
  of CPU, so they run at most once per `observability.inference_probe_interval_s` and the
  report says how old the measurement is.

A component is "healthy", "starting" (loading or warming up), "down" (its probe failed)
or "off" (not configured). The whole is "healthy" when every configured component is,
"unhealthy" when the database is down (nothing can be served), else "degraded".
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

import numpy as np
from sqlalchemy import Engine, QueuePool, text

from banking.store import (
    KeyValueStore,
    MemoryStore,
    RedisStore,
    StoreUnavailable,
)
from nlu import Pipeline
from nlu.stages import LLMStage, RasaStage


class _Transcriber(Protocol):
    def transcribe(self, audio: np.ndarray) -> object: ...


class _Renderer(Protocol):
    cache_hits: int
    cache_misses: int

    def render(self, piece: str) -> object: ...


class _VoiceNames(Protocol):
    @property
    def stt_model(self) -> str: ...
    @property
    def tts_voice(self) -> str: ...


class SpeechModels(Protocol):
    """What the probes, /health and /api/metrics use of voice.VoiceServices (the voice
    package sits above dialogue, so it is described here rather than imported)."""

    @property
    def settings(self) -> _VoiceNames: ...
    @property
    def stt(self) -> _Transcriber: ...
    @property
    def tts(self) -> _Renderer: ...

    warm: threading.Event
    listeners: list[Callable[[dict[str, int]], None]]  # told each spoken turn's timings

    def status(self) -> str: ...


Status = Literal["healthy", "starting", "down", "off"]
PROBE_KEY = "health-probe"
RASA_PROBE_TEXT = "hello"
TTS_PROBE_TEXT = "Health check."
STT_PROBE_SAMPLES = 16_000  # one second at 16 kHz

StageT = TypeVar("StageT")


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def database(engine: Engine) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1")).scalar_one()
    except Exception as error:  # any driver's failure means the same to the caller
        return {"status": "down", "backend": engine.dialect.name, "error": type(error).__name__}
    report: dict[str, Any] = {
        "status": "healthy",
        "latency_ms": _ms_since(started),
        "backend": engine.dialect.name,
    }
    pool = engine.pool
    if isinstance(pool, QueuePool):  # the one kind that counts its connections
        report["connection_pool"] = {
            "active": pool.checkedout(),
            "idle": pool.checkedin(),
            "max": pool.size() + max(getattr(pool, "_max_overflow", 0), 0),
        }
    return report


def session_store(store: KeyValueStore) -> dict[str, Any]:
    started = time.perf_counter()
    if isinstance(store, RedisStore):
        if store.status() != "ready":  # a PING
            return {"status": "down", "backend": "redis", "error": "no answer to PING"}
        latency = _ms_since(started)
        try:
            used = store.memory_used_bytes()
        except StoreUnavailable:
            return {"status": "down", "backend": "redis", "error": "no answer to INFO"}
        return {
            "status": "healthy",
            "latency_ms": latency,
            "backend": "redis",
            "memory_usage_mb": round(used / 2**20, 2),
        }
    assert isinstance(store, MemoryStore)
    store.save(PROBE_KEY, "ok", ttl_s=60)
    answered = store.load(PROBE_KEY) == "ok"
    return {
        "status": "healthy" if answered else "down",
        "latency_ms": _ms_since(started),
        "backend": "memory",
    }


def rasa(pipeline: Pipeline) -> dict[str, Any]:
    stage = _stage(pipeline, RasaStage)
    if stage is None:
        return {"status": "off"}
    if not stage.server.is_ready:  # loading its model, or dead until the watchdog restarts it
        return {"status": "starting" if stage.server.pid is not None else "down"}
    started = time.perf_counter()
    answer = stage.backend.parse(RASA_PROBE_TEXT)
    if answer is None:
        return {"status": "down", "error": "no answer to a parse"}
    return {"status": "healthy", "latency_ms": _ms_since(started), "model": stage.server.model_name}


def llm(pipeline: Pipeline) -> dict[str, Any]:
    stage = _stage(pipeline, LLMStage)
    if stage is None:
        return {"status": "off"}
    report: dict[str, Any] = {"model_name": stage.model_id, "loaded": False}
    status = stage.status()
    if status != "ready":
        return {"status": "starting" if status == "starting" else "down", **report}
    probe_ms = stage.probe()
    if probe_ms is None:
        return {"status": "down", **report}
    return {
        "status": "healthy",
        **report,
        "loaded": True,
        "latency_ms": round(probe_ms, 3),
        "inference_latency_ms": pipeline.stats["llm"].median_ms,
    }


@dataclass
class _Measured:
    at: float  # time.monotonic()
    latency_ms: float | None
    error: str | None


class InferenceProbes:
    """The speech models' probes, run at most once per `interval_s` (see the module)."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._last: dict[str, _Measured] = {}
        self._lock = threading.Lock()

    def stt(self, voice: SpeechModels | None) -> dict[str, Any]:
        if voice is None:
            return {"status": "off"}
        report = {"model_name": voice.settings.stt_model}
        noise = np.random.default_rng(0).normal(0, 0.05, STT_PROBE_SAMPLES).astype(np.float32)
        return {**report, **self._run("stt", voice, lambda: voice.stt.transcribe(noise))}

    def tts(self, voice: SpeechModels | None) -> dict[str, Any]:
        if voice is None:
            return {"status": "off"}
        report = {"voice": voice.settings.tts_voice}
        return {**report, **self._run("tts", voice, lambda: voice.tts.render(TTS_PROBE_TEXT))}

    def _run(self, name: str, voice: SpeechModels, probe: Callable[[], object]) -> dict[str, Any]:
        if not voice.warm.is_set():
            return {"status": "starting", "loaded": True}
        with self._lock:
            last = self._last.get(name)
            if last is None or time.monotonic() - last.at >= self.interval_s:
                started = time.perf_counter()
                try:
                    probe()
                    last = _Measured(time.monotonic(), _ms_since(started), None)
                except Exception as error:  # a model failing in any way is "down"
                    last = _Measured(time.monotonic(), None, type(error).__name__)
                self._last[name] = last
        age = round(time.monotonic() - last.at, 1)
        if last.error is not None:
            return {"status": "down", "loaded": True, "error": last.error, "measured_s_ago": age}
        return {
            "status": "healthy",
            "loaded": True,
            "inference_latency_ms": last.latency_ms,
            "measured_s_ago": age,
        }


def overall(components: dict[str, dict[str, Any]]) -> str:
    if components["database"]["status"] == "down":
        return "unhealthy"
    states = {part["status"] for part in components.values()} - {"off"}
    return "healthy" if states <= {"healthy"} else "degraded"


def _stage(pipeline: Pipeline, kind: type[StageT]) -> StageT | None:
    """The pipeline's stage of this kind, if it runs one."""
    return next((stage for stage in pipeline.stages if isinstance(stage, kind)), None)
