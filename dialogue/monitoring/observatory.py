"""The running system as the admin routes see it: banking/api/observatory.py's
`Observatory`, over the bank's database and session store, the NLU cascade, the speech
models and this process's metrics. banking/api/admin.py serves it over HTTP."""

from dataclasses import dataclass
from datetime import UTC, datetime
from statistics import quantiles
from typing import Any

from prometheus_client import generate_latest
from sqlalchemy import Engine

from banking.api.observatory import ModelInfo, ModelUnavailable, UnknownModel
from banking.store import KeyValueStore, RedisStore
from dialogue.monitoring import health
from dialogue.monitoring.health import InferenceProbes, SpeechModels
from dialogue.monitoring.metrics import Metrics
from nlu import Pipeline
from nlu.model_files import ModelFileError, load_manifest
from nlu.stages import LLMStage

MIN_P95_SAMPLES = 20  # fewer calls give no meaningful 95th percentile: it is reported as null

STAGE_NAMES = {
    "rules": ("Deterministic rules", "bankbot"),
    "embedding": (
        "all-MiniLM-L6-v2 sentence embeddings (numpy), nearest training examples",
        "sentence-transformers/all-MiniLM-L6-v2",
    ),
    "rasa": ("Rasa NLU 3.6.21: logistic regression and CRF", "rasa"),
}


@dataclass(frozen=True)
class DialogueObservatory:
    """Implements banking.api.observatory.Observatory (server.py checks it, typed)."""

    engine: Engine  # the bank's database
    store: KeyValueStore  # the bank's session store
    demo_mode: bool
    pipeline: Pipeline
    voice: SpeechModels | None  # the speech models, when the voice channel is on
    metrics: Metrics
    probes: InferenceProbes
    service_name: str
    metrics_token: str

    def health(self) -> dict[str, object]:
        parts = {**self.pipeline.status(), "sessions": self.store.status()}
        if self.voice is not None:
            parts["voice"] = self.voice.status()
        degraded = {name: state for name, state in parts.items() if state != "ready"}
        body: dict[str, object] = {
            "status": "degraded" if degraded else "healthy",
            "service": self.service_name,
        }
        if degraded:
            body["degraded"] = degraded
        return body

    def health_detailed(self, version: str) -> dict[str, Any]:
        """Each component's status and the latency of a real probe (health.py)."""
        components = {
            "database": health.database(self.engine),
            "session_store": health.session_store(self.store),
            "rasa": health.rasa(self.pipeline),
            "llm": health.llm(self.pipeline),
            "stt": self.probes.stt(self.voice),
            "tts": self.probes.tts(self.voice),
        }
        return {
            "status": health.overall(components),
            "timestamp": _now(),
            "version": version,
            "environment": "demo" if self.demo_mode else "production",
            "uptime_s": round(self.metrics.uptime_s, 1),
            "components": components,
        }

    def status(self, version: str) -> dict[str, Any]:
        """seeds/000's status: the AI backend is the NLU cascade, available when every
        stage is."""
        stages = self.pipeline.status()
        return {
            "ai_backend": "+".join(stages),
            "ai_available": all(value == "ready" for value in stages.values()),
            "db_type": self.engine.dialect.name,
            "cache_type": "redis" if isinstance(self.store, RedisStore) else "memory",
            "version": version,
        }

    def metrics_report(self) -> dict[str, Any]:
        """seeds/000's live dashboard, from this process's counts since it started."""
        metrics = self.metrics
        seen = metrics.snapshot()
        total, errors = seen["requests"], seen["errors"]
        by_provider = {
            stage: {
                "calls": calls,
                "errors": failed,
                "avg_latency_ms": _round(sum(latencies) / len(latencies)) if latencies else None,
                "p95_latency_ms": (
                    _round(quantiles(latencies, n=20)[18])
                    if len(latencies) >= MIN_P95_SAMPLES
                    else None
                ),
            }
            for stage, (calls, failed, latencies) in seen["stages"].items()
        }
        return {
            "uptime_seconds": round(metrics.uptime_s, 1),
            "requests": {
                "total": total,
                "errors": errors,
                "auth_failures": seen["auth_failures"],
                "error_rate_pct": _percent(errors, total) or 0.0,
            },
            "websocket": {"total_connects": seen["ws_connects"], "open": seen["ws_open"]},
            "ai": {"fallbacks": seen["fallbacks"], "by_provider": by_provider},
            "cache": self._speech_cache(),
            "route_timings": {
                route: {
                    "calls": timing.calls,
                    "avg_ms": _round(timing.total_ms / timing.calls),
                    "max_ms": _round(timing.max_ms),
                }
                for route, timing in sorted(seen["routes"].items())
            },
            "recent_errors": seen["recent_errors"],
            "nlu": seen["nlu"],
            "transfers": self._transfers(),
        }

    def prometheus(self) -> bytes:
        """The Prometheus text exposition of this app's registry."""
        return generate_latest(self.metrics.registry)

    def models(self) -> list[ModelInfo]:
        """The cascade's stages, and every LLM in models/manifest.yaml."""
        models = []
        for stage in self.pipeline.stages:
            stats = self.pipeline.stats[stage.name]
            state = stage.status()
            usage = {
                "inference_latency_ms": stats.median_ms,
                "daily_requests": stats.requests_today,
            }
            if isinstance(stage, LLMStage):
                for entry in load_manifest():
                    active = entry.id == stage.model_id
                    models.append(
                        ModelInfo(
                            id=entry.id,
                            name=entry.name,
                            provider=entry.upstream,
                            status=(
                                ("active" if state == "ready" else state) if active else "available"
                            ),
                            **(
                                usage
                                if active
                                else {"inference_latency_ms": None, "daily_requests": 0}
                            ),
                        )
                    )
            else:
                name, provider = STAGE_NAMES[stage.name]
                status = "active" if state == "ready" else state
                models.append(
                    ModelInfo(id=stage.name, name=name, provider=provider, status=status, **usage)
                )
        return models

    def switch_model(self, model_id: str) -> str:
        """Make another manifest LLM the cascade's last stage (loads it first: seconds)."""
        stage = next((s for s in self.pipeline.stages if isinstance(s, LLMStage)), None)
        known = {entry.id for entry in load_manifest()}
        if model_id not in known:
            raise UnknownModel(f"No LLM model {model_id!r}; known: {sorted(known)}")
        if stage is None:
            raise ModelUnavailable("The LLM stage is not configured (nlu.backends).")
        try:
            return stage.switch(model_id)
        except ModelFileError as error:
            raise ModelUnavailable(str(error)) from error

    def _speech_cache(self) -> dict[str, Any]:
        """The text-to-speech cache: spoken pieces found ready, and synthesised."""
        voice = self.voice
        hits, misses = (0, 0) if voice is None else (voice.tts.cache_hits, voice.tts.cache_misses)
        return {"hits": hits, "misses": misses, "hit_ratio_pct": _percent(hits, hits + misses)}

    def _transfers(self) -> dict[str, Any]:
        counts = self.metrics.transfer_counts()
        completed = int(sum(n for (outcome, _), n in counts.items() if outcome == "completed"))
        refused = {
            reason: int(n) for (outcome, reason), n in counts.items() if outcome == "refused"
        }
        attempts = completed + sum(refused.values())
        return {
            "completed": completed,
            "refused": refused,
            "success_rate_pct": _percent(completed, attempts),
        }


def _percent(part: float, whole: float) -> float | None:
    return round(100 * part / whole, 2) if whole else None


def _round(ms: float) -> float:
    return round(ms, 2)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
