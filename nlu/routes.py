"""/test-nlu and /test-nlu-get: the NLU result for a sentence, with no banking."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, StringConstraints

from nlu.pipeline import Pipeline
from nlu.result import NLUResult

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
