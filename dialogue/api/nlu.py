"""/test-nlu and /test-nlu-get: the NLU result for a sentence, with no banking.

Open to anyone, so each request counts against the client's address (the request limit),
and the cascade is asked in the background (nlu/priority.py): users' turns come first.
"""

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, StringConstraints

from banking.api.deps import AddressLimited
from dialogue.api.deps import MAX_MESSAGE_CHARS, PipelineDep
from nlu import NLUResult
from nlu.priority import background

Message = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_MESSAGE_CHARS)
]

router = APIRouter(tags=["nlu"])


class NLURequest(BaseModel):
    message: Message


class NLUResponse(BaseModel):
    input: str
    result: NLUResult


@router.post("/test-nlu", dependencies=[AddressLimited])
def parse_message(body: NLURequest, pipeline: PipelineDep) -> NLUResponse:
    with background():
        return NLUResponse(input=body.message, result=pipeline.parse(body.message))


@router.get("/test-nlu-get", dependencies=[AddressLimited])
def parse_message_get(
    message: Annotated[str, Query(min_length=1, max_length=MAX_MESSAGE_CHARS)],
    pipeline: PipelineDep,
) -> NLUResponse:
    with background():
        return NLUResponse(input=message, result=pipeline.parse(message))
