"""POST /assistant: the text channel. It translates HTTP to Assistant.turn() and back.

The `user_id` must be the access token's user (403 otherwise); in demo mode a request
without a token acts for the `user_id` it names, as seeds/001 documents.
"""

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StringConstraints

from banking.api.deps import (
    AUTH_RESPONSES,
    GUARDED_RESPONSES,
    MAX_PASSWORD_CHARS,
    BankDep,
    Caller,
    IdempotencyKey,
    UserId,
    acting_for,
    idempotent,
    rate_limited,
)
from dialogue.api.deps import MAX_MESSAGE_CHARS, SESSION_ID_PATTERN, AssistantDep


class AssistantRequest(BaseModel):
    user_id: Annotated[UserId, Field(description="ID of the logged-in user")]
    message: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_MESSAGE_CHARS),
        Field(description="The spoken or typed command"),
    ]
    password: Annotated[
        str | None,
        Field(max_length=MAX_PASSWORD_CHARS, description="Confirms a transfer (second step)"),
    ] = None
    session_id: Annotated[
        str | None,
        Field(
            pattern=SESSION_ID_PATTERN,
            description="Continues a conversation: the assistant remembers a transfer being "
            "set up between turns. Without it every request stands alone, as documented.",
        ),
    ] = None


class AssistantResponse(BaseModel):
    reply: str
    confidence: float
    source: str
    page: str | None
    data: dict[str, Any] | None = None
    session_id: str | None = None


def _checked(body: AssistantRequest, caller: Caller) -> AssistantRequest:
    """The request, whose `user_id` must be the token's user."""
    acting_for(caller, body.user_id)
    return body


def _speaker(body: AssistantRequest) -> int:
    return body.user_id


router = APIRouter(tags=["assistant"], responses=AUTH_RESPONSES)


@router.post(
    "/assistant",
    response_model=AssistantResponse,
    responses={
        404: {"model": AssistantResponse, "description": "User not found"},
        **GUARDED_RESPONSES,
    },
)
def assistant(
    body: Annotated[AssistantRequest, rate_limited(_checked, _speaker)],
    assistant: AssistantDep,
    bank: BankDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:

    def run(transfer_id: str | None) -> JSONResponse:
        answer = assistant.turn(
            body.user_id,
            body.message,
            body.password,
            body.session_id,
            channel="assistant",
            transfer_id=transfer_id,
        )
        content = answer.body()
        if body.session_id is not None:
            content["session_id"] = body.session_id
        return JSONResponse(content, status_code=200 if answer.user_found else 404)

    payload = {**body.model_dump(exclude={"password"}), "password_given": bool(body.password)}
    return idempotent(bank, idempotency_key, body.user_id, "assistant", payload, run)
