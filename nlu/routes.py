"""/test-nlu and /test-nlu-get: the NLU result for a sentence, with no banking."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, StringConstraints

from nlu.model_files import ModelFileError, load_manifest
from nlu.pipeline import Pipeline
from nlu.result import NLUResult
from nlu.stages import LLMStage

MAX_MESSAGE_CHARS = 1000
Message = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_MESSAGE_CHARS)
]

router = APIRouter(tags=["nlu"])


class NLURequest(BaseModel):
    message: Message


class NLUResponse(BaseModel):
    input: str
    result: NLUResult


def _pipeline(request: Request) -> Pipeline:
    return request.app.state.nlu


PipelineDep = Annotated[Pipeline, Depends(_pipeline)]


@router.post("/test-nlu")
def parse_message(body: NLURequest, pipeline: PipelineDep) -> NLUResponse:
    return NLUResponse(input=body.message, result=pipeline.parse(body.message))


@router.get("/test-nlu-get")
def parse_message_get(
    message: Annotated[str, Query(min_length=1, max_length=MAX_MESSAGE_CHARS)],
    pipeline: PipelineDep,
) -> NLUResponse:
    return NLUResponse(input=message, result=pipeline.parse(message))


admin = APIRouter(prefix="/admin", tags=["admin"])

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


@admin.get("/models")
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


@admin.post("/models/{model_id}/switch", responses={404: {}, 409: {}})
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
