"""The observability routes: GET /health/detailed, /api/status, /api/metrics and /metrics.

Who may read them (README, "Observability"):

- `/api/status` is open, like `/health`: which NLU stages run and whether they answer, the
  database and session store kinds and the version; no user data, no figures.
- `/health/detailed` and `/api/metrics` need the admin role: latencies, pool sizes, model
  names, error routes and traffic help an attacker time an attack, and the detailed
  probes cost CPU that an open endpoint would let anyone spend.
- `/metrics` (Prometheus text) needs the admin role, or the scrape token
  `observability.metrics_token` as a bearer token: a scraper cannot log in every 15 minutes.
"""

import hmac
from datetime import UTC, datetime
from statistics import quantiles
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, field_validator

from banking.auth_routes import (
    AUTH_RESPONSES,
    bearer_token,
    caller,
    forbidden,
    require_role,
    role_of,
)
from dialogue.monitoring import health
from dialogue.monitoring.metrics import Metrics

MIN_P95_SAMPLES = 20  # fewer calls give no meaningful 95th percentile: it is reported as null
MIN_TOKEN_CHARS = 32


class ObservabilitySettings(BaseModel):
    """Values come from config.yaml (observability), which documents each key."""

    model_config = ConfigDict(extra="forbid")

    metrics_token: str
    inference_probe_interval_s: Annotated[float, Field(gt=0)]
    recent_errors: Annotated[int, Field(ge=0)]

    @field_validator("metrics_token")
    @classmethod
    def _long_enough(cls, token: str) -> str:
        if token and len(token) < MIN_TOKEN_CHARS:
            raise ValueError(f"must be empty or at least {MIN_TOKEN_CHARS} characters")
        return token


router = APIRouter(tags=["observability"])
admin_only = Depends(require_role("admin"))


def _metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def scraper_or_admin(request: Request) -> None:
    """The scrape token, or a token of an admin (in demo mode, no token at all)."""
    state = request.app.state
    expected = state.settings.observability.metrics_token
    token = bearer_token(request)
    if expected and token and hmac.compare_digest(token.encode(), expected.encode()):
        return
    role = role_of(caller(request, token, state.tokens), state.users)
    if role is not None and role != "admin":
        raise forbidden("This needs the admin role or the metrics scrape token.")


@router.get(
    "/health/detailed",
    dependencies=[admin_only],
    responses={**AUTH_RESPONSES, 503: {"description": "The database is down"}},
)
def health_detailed(request: Request) -> JSONResponse:
    """Each component's status and the latency of a real probe (dialogue/monitoring/health.py)."""
    state = request.app.state
    pipeline = state.nlu
    components = {
        "database": health.database(state.engine),
        "session_store": health.session_store(state.sessions),
        "rasa": health.rasa(pipeline),
        "llm": health.llm(pipeline),
        "stt": state.probes.stt(state.voice),
        "tts": state.probes.tts(state.voice),
    }
    status = health.overall(components)
    body = {
        "status": status,
        "timestamp": _now(),
        "version": request.app.version,
        "environment": "demo" if state.demo_mode else "production",
        "uptime_s": round(state.metrics.uptime_s, 1),
        "components": components,
    }
    return JSONResponse(body, status_code=503 if status == "unhealthy" else 200)


@router.get("/api/status")
def api_status(request: Request) -> dict[str, Any]:
    """seeds/000's status: the AI backend is the NLU cascade, available when every stage is."""
    state = request.app.state
    stages = state.nlu.status()
    return {
        "ai_backend": "+".join(stages),
        "ai_available": all(value == "ready" for value in stages.values()),
        "db_type": state.engine.dialect.name,
        "cache_type": "redis" if state.settings.sessions.redis_url else "memory",
        "version": request.app.version,
    }


@router.get("/api/metrics", dependencies=[admin_only], responses=AUTH_RESPONSES)
def api_metrics(request: Request) -> dict[str, Any]:
    """seeds/000's live dashboard, from this process's counts since it started."""
    metrics = _metrics(request)
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
        "cache": _speech_cache(request),
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
        "transfers": _transfers(metrics),
    }


@router.get(
    "/metrics",
    dependencies=[Depends(scraper_or_admin)],
    response_class=Response,
    responses={**AUTH_RESPONSES, 200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def prometheus(request: Request) -> Response:
    """The Prometheus text exposition of this app's registry."""
    return Response(generate_latest(_metrics(request).registry), media_type=CONTENT_TYPE_LATEST)


def _speech_cache(request: Request) -> dict[str, Any]:
    """The text-to-speech cache: spoken pieces found ready, and synthesised."""
    voice = request.app.state.voice
    hits, misses = (0, 0) if voice is None else (voice.tts.cache_hits, voice.tts.cache_misses)
    return {"hits": hits, "misses": misses, "hit_ratio_pct": _percent(hits, hits + misses)}


def _transfers(metrics: Metrics) -> dict[str, Any]:
    counts = metrics.transfer_counts()
    completed = int(sum(n for (outcome, _), n in counts.items() if outcome == "completed"))
    refused = {reason: int(n) for (outcome, reason), n in counts.items() if outcome == "refused"}
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
