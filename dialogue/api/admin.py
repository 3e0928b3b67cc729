"""Health, observability and the NLU models: GET /health, /health/detailed, /api/status,
/api/metrics, /metrics, and the admin's /admin/models and /admin/models/{id}/switch.

They report on the assistant's parts (the NLU cascade, the speech models, its turns) as
much as on the bank's, so they live with the assistant rather than in banking/api.

Who may read them (README, "Observability"):

- `/health` is open: "healthy", or which parts are not answering.
- `/api/status` is open, like `/health`: which NLU stages run and whether they answer, the
  database and session store kinds and the version; no user data, no figures.
- `/health/detailed` and `/api/metrics` need the admin role: latencies, pool sizes, model
  names, error routes and traffic help an attacker time an attack, and the detailed
  probes cost CPU that an open endpoint would let anyone spend.
- `/metrics` (Prometheus text) needs the admin role, or the scrape token
  `observability.metrics_token` as a bearer token: a scraper cannot log in every 15 minutes.
- `/admin/models` and switching the LLM need the admin role.
"""

import hmac
from datetime import UTC, datetime
from statistics import quantiles
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from banking.api.deps import (
    AUTH_RESPONSES,
    BankDep,
    bearer_token,
    caller,
    forbidden,
    require_role,
    role_of,
)
from banking.store import RedisStore
from dialogue.api.deps import DialogueDep, PipelineDep
from dialogue.api.services import DialogueServices
from dialogue.monitoring import health
from dialogue.monitoring.metrics import Metrics
from nlu.model_files import ModelFileError, load_manifest
from nlu.stages import LLMStage

MIN_P95_SAMPLES = 20  # fewer calls give no meaningful 95th percentile: it is reported as null

admin_only = Depends(require_role("admin"))
health_router = APIRouter(tags=["health"])  # served at / and under /api/v1
router = APIRouter(tags=["observability"])
models = APIRouter(prefix="/admin", tags=["admin"], dependencies=[admin_only])


@health_router.get("/health")
def health_check(bank: BankDep, dialogue: DialogueDep) -> dict[str, object]:
    """ "degraded" names each part (NLU stage, session store) that is not answering."""
    parts = {**dialogue.pipeline.status(), "sessions": bank.store.status()}
    if dialogue.voice is not None:
        parts["voice"] = dialogue.voice.status()
    degraded = {name: state for name, state in parts.items() if state != "ready"}
    body: dict[str, object] = {
        "status": "degraded" if degraded else "healthy",
        "service": dialogue.service_name,
    }
    if degraded:
        body["degraded"] = degraded
    return body


def scraper_or_admin(request: Request, bank: BankDep, dialogue: DialogueDep) -> None:
    """The scrape token, or a token of an admin (in demo mode, no token at all)."""
    expected = dialogue.observability.metrics_token
    token = bearer_token(request)  # read here, not as a dependency: the scrape token is no login
    if expected and token and hmac.compare_digest(token.encode(), expected.encode()):
        return
    role = role_of(caller(token, bank), bank.users)
    if role is not None and role != "admin":
        raise forbidden("This needs the admin role or the metrics scrape token.")


@router.get(
    "/health/detailed",
    dependencies=[admin_only],
    responses={**AUTH_RESPONSES, 503: {"description": "The database is down"}},
)
def health_detailed(request: Request, bank: BankDep, dialogue: DialogueDep) -> JSONResponse:
    """Each component's status and the latency of a real probe (dialogue/monitoring/health.py)."""
    pipeline = dialogue.pipeline
    components = {
        "database": health.database(bank.engine),
        "session_store": health.session_store(bank.store),
        "rasa": health.rasa(pipeline),
        "llm": health.llm(pipeline),
        "stt": dialogue.probes.stt(dialogue.voice),
        "tts": dialogue.probes.tts(dialogue.voice),
    }
    status = health.overall(components)
    body = {
        "status": status,
        "timestamp": _now(),
        "version": request.app.version,
        "environment": "demo" if bank.demo_mode else "production",
        "uptime_s": round(dialogue.metrics.uptime_s, 1),
        "components": components,
    }
    return JSONResponse(body, status_code=503 if status == "unhealthy" else 200)


@router.get("/api/status")
def api_status(request: Request, bank: BankDep, dialogue: DialogueDep) -> dict[str, Any]:
    """seeds/000's status: the AI backend is the NLU cascade, available when every stage is."""
    stages = dialogue.pipeline.status()
    return {
        "ai_backend": "+".join(stages),
        "ai_available": all(value == "ready" for value in stages.values()),
        "db_type": bank.engine.dialect.name,
        "cache_type": "redis" if isinstance(bank.store, RedisStore) else "memory",
        "version": request.app.version,
    }


@router.get("/api/metrics", dependencies=[admin_only], responses=AUTH_RESPONSES)
def api_metrics(dialogue: DialogueDep) -> dict[str, Any]:
    """seeds/000's live dashboard, from this process's counts since it started."""
    metrics = dialogue.metrics
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
        "cache": _speech_cache(dialogue),
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
def prometheus(dialogue: DialogueDep) -> Response:
    """The Prometheus text exposition of this app's registry."""
    registry = dialogue.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def _speech_cache(dialogue: DialogueServices) -> dict[str, Any]:
    """The text-to-speech cache: spoken pieces found ready, and synthesised."""
    voice = dialogue.voice
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


# The NLU models (admin only).

STAGE_NAMES = {
    "rules": ("Deterministic rules", "bankbot"),
    "rasa": ("Rasa NLU 3.6.21: logistic regression and CRF", "rasa"),
}


class ModelInfo(BaseModel):
    id: str
    name: str
    provider: str
    status: str
    inference_latency_ms: float | None
    daily_requests: int
    # No live accuracy is measured; `python -m nlu.evaluate` reports it offline.
    accuracy_score: float | None = None


class ModelList(BaseModel):
    models: list[ModelInfo]


class SwitchResult(BaseModel):
    status: str
    message: str
    previous_model: str
    current_model: str
    switched_at: str


@models.get("/models")
def list_models(pipeline: PipelineDep) -> ModelList:
    """The cascade's stages, and every LLM in models/manifest.yaml."""
    models = []
    for stage in pipeline.stages:
        stats = pipeline.stats[stage.name]
        state = stage.status()
        usage = {"inference_latency_ms": stats.median_ms, "daily_requests": stats.requests_today}
        if isinstance(stage, LLMStage):
            for entry in load_manifest():
                active = entry.id == stage.model_id
                models.append(
                    ModelInfo(
                        id=entry.id,
                        name=entry.name,
                        provider=entry.upstream,
                        status=("active" if state == "ready" else state) if active else "available",
                        **(
                            usage if active else {"inference_latency_ms": None, "daily_requests": 0}
                        ),
                    )
                )
        else:
            name, provider = STAGE_NAMES[stage.name]
            status = "active" if state == "ready" else state
            models.append(
                ModelInfo(id=stage.name, name=name, provider=provider, status=status, **usage)
            )
    return ModelList(models=models)


@models.post("/models/{model_id}/switch", responses={404: {}, 409: {}})
def switch_model(model_id: str, pipeline: PipelineDep) -> SwitchResult:
    """Make another manifest LLM the cascade's last stage (loads it first: seconds)."""
    stage = next((s for s in pipeline.stages if isinstance(s, LLMStage)), None)
    known = {entry.id for entry in load_manifest()}
    if model_id not in known:
        raise HTTPException(404, f"No LLM model {model_id!r}; known: {sorted(known)}")
    if stage is None:
        raise HTTPException(409, "The LLM stage is not configured (nlu.backends).")
    try:
        previous = stage.switch(model_id)
    except ModelFileError as error:
        raise HTTPException(409, str(error)) from error
    return SwitchResult(
        status="success",
        message=f"Model switched to {model_id}",
        previous_model=previous,
        current_model=model_id,
        switched_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
