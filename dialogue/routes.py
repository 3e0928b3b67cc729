"""POST /assistant: the text channel. It translates HTTP to Assistant.turn() and back."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StringConstraints

from dialogue.assistant import Assistant

MAX_MESSAGE_CHARS = 1000
MAX_PASSWORD_CHARS = 128

router = APIRouter(tags=["assistant"])


class AssistantRequest(BaseModel):
    user_id: Annotated[int, Field(strict=True, ge=1, description="ID of the logged-in user")]
    message: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_MESSAGE_CHARS),
        Field(description="The spoken or typed command"),
    ]
    password: Annotated[
        str | None,
        Field(max_length=MAX_PASSWORD_CHARS, description="Confirms a transfer (second step)"),
    ] = None


class AssistantResponse(BaseModel):
    reply: str
    confidence: float
    source: str
    page: str | None
    data: dict | None = None


def _assistant(request: Request) -> Assistant:
    return request.app.state.assistant


AssistantDep = Annotated[Assistant, Depends(_assistant)]


@router.post(
    "/assistant",
    response_model=AssistantResponse,
    responses={404: {"model": AssistantResponse, "description": "User not found"}},
)
def assistant(body: AssistantRequest, assistant: AssistantDep) -> JSONResponse:
    answer = assistant.turn(body.user_id, body.message, body.password)
    return JSONResponse(answer.body(), status_code=200 if answer.user_found else 404)
