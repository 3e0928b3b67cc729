"""Health, observability and the NLU models: GET /health, /health/detailed, /api/status,
/api/metrics, /metrics, and the admin's /admin/models and /admin/models/{id}/switch.

They report on the assistant's parts (the NLU cascade, the speech models, its turns) as
much as on the bank's: the handlers ask an `Observatory` (observatory.py), which
dialogue/monitoring/observatory.py implements, and decide here only who may ask and what
the answer's HTTP status is.

Who may read them (docs/security.md, "Who may do what"; docs/operations.md, "Observability"):

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
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from banking.api.deps import (
    AUTH_RESPONSES,
    BankDep,
    ObservatoryDep,
    bearer_token,
    caller,
    forbidden,
    require_role,
    role_of,
)
from banking.api.observatory import ModelInfo, ModelUnavailable, UnknownModel

admin_only = Depends(require_role("admin"))
health_router = APIRouter(tags=["health"])  # served at / and under /api/v1
router = APIRouter(tags=["observability"])
models = APIRouter(prefix="/admin", tags=["admin"], dependencies=[admin_only])


@health_router.get("/health")
def health_check(observatory: ObservatoryDep) -> dict[str, object]:
    """ "degraded" names each part (NLU stage, session store) that is not answering."""
    return observatory.health()


def scraper_or_admin(request: Request, bank: BankDep, observatory: ObservatoryDep) -> None:
    """The scrape token, or a token of an admin (in demo mode, no token at all)."""
    expected = observatory.metrics_token
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
def health_detailed(request: Request, observatory: ObservatoryDep) -> JSONResponse:
    """Each component's status and the latency of a real probe (dialogue/monitoring/health.py)."""
    body = observatory.health_detailed(request.app.version)
    return JSONResponse(body, status_code=503 if body["status"] == "unhealthy" else 200)


@router.get("/api/status")
def api_status(request: Request, observatory: ObservatoryDep) -> dict[str, Any]:
    """seeds/000's status: the AI backend is the NLU cascade, available when every stage is."""
    return observatory.status(request.app.version)


@router.get("/api/metrics", dependencies=[admin_only], responses=AUTH_RESPONSES)
def api_metrics(observatory: ObservatoryDep) -> dict[str, Any]:
    """seeds/000's live dashboard, from this process's counts since it started."""
    return observatory.metrics_report()


@router.get(
    "/metrics",
    dependencies=[Depends(scraper_or_admin)],
    response_class=Response,
    responses={**AUTH_RESPONSES, 200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def prometheus(observatory: ObservatoryDep) -> Response:
    """The Prometheus text exposition of this app's registry."""
    return Response(observatory.prometheus(), media_type=CONTENT_TYPE_LATEST)


# The NLU models (admin only).


class ModelList(BaseModel):
    models: list[ModelInfo]


class SwitchResult(BaseModel):
    status: str
    message: str
    previous_model: str
    current_model: str
    switched_at: str


@models.get("/models")
def list_models(observatory: ObservatoryDep) -> ModelList:
    """The cascade's stages, and every LLM in models/manifest.yaml."""
    return ModelList(models=observatory.models())


@models.post("/models/{model_id}/switch", responses={404: {}, 409: {}})
def switch_model(model_id: str, observatory: ObservatoryDep) -> SwitchResult:
    """Make another manifest LLM the cascade's last stage (loads it first: seconds)."""
    try:
        previous = observatory.switch_model(model_id)
    except UnknownModel as unknown:
        raise HTTPException(404, str(unknown)) from unknown
    except ModelUnavailable as error:
        raise HTTPException(409, str(error)) from error
    return SwitchResult(
        status="success",
        message=f"Model switched to {model_id}",
        previous_model=previous,
        current_model=model_id,
        switched_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
