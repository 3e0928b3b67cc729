"""What the health, observability and model routes (admin.py) ask of the running system.

They report on the assistant's parts (the NLU cascade, the speech models, its turns) as
much as on the bank's, and banking imports no package above it: so the routes depend on
this port, and dialogue/monitoring/observatory.py implements it. The composition root
(server.py) puts that implementation on `Services.observatory`; routes take it as
`ObservatoryDep` (deps.py).
"""

from typing import Any, Protocol

from pydantic import BaseModel


class UnknownModel(LookupError):
    """No LLM of that id in models/manifest.yaml (404)."""


class ModelUnavailable(Exception):
    """The model is known but cannot be switched to: the LLM stage is not configured, or
    the model's files are missing (409)."""


class ModelInfo(BaseModel):
    id: str
    name: str
    provider: str
    status: str
    inference_latency_ms: float | None
    daily_requests: int
    # No live accuracy is measured; `python -m nlu.evaluate` reports it offline.
    accuracy_score: float | None = None


class Observatory(Protocol):
    """The running system as the admin routes see it. Bodies are the JSON the routes send;
    `version` is the app's version, which they report."""

    @property
    def metrics_token(self) -> str:
        """The scrape token that may read /metrics without logging in; "" for none."""
        ...

    def health(self) -> dict[str, object]:
        """GET /health: "healthy", or "degraded" naming each part that is not answering."""
        ...

    def health_detailed(self, version: str) -> dict[str, Any]:
        """GET /health/detailed: each component probed; its "status" is "unhealthy" when
        nothing can be served (the database is down)."""
        ...

    def status(self, version: str) -> dict[str, Any]:
        """GET /api/status: which NLU stages run, the store kinds; no user data."""
        ...

    def metrics_report(self) -> dict[str, Any]:
        """GET /api/metrics: this process's counts since it started."""
        ...

    def prometheus(self) -> bytes:
        """GET /metrics: the Prometheus text exposition (CONTENT_TYPE_LATEST)."""
        ...

    def models(self) -> list[ModelInfo]:
        """GET /admin/models: the cascade's stages, and every LLM of the manifest."""
        ...

    def switch_model(self, model_id: str) -> str:
        """Makes `model_id` the cascade's LLM (loads it: seconds); returns the previous one.

        Raises UnknownModel or ModelUnavailable, whose text is the refusal's message.
        """
        ...
