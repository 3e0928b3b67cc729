"""POST /assistant: the text channel. It translates HTTP to Assistant.turn() and back.

The `user_id` must be the access token's user (403 otherwise); in demo mode a request
without a token acts for the `user_id` it names, as seeds/001 documents.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.requests import HTTPConnection
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StringConstraints

from banking.auth_routes import AUTH_RESPONSES, Caller, acting_for
from dialogue.assistant import Assistant
from dialogue.idempotency import IdempotencyKey, idempotent
from dialogue.throttle import spend_request

MAX_MESSAGE_CHARS = 1000
MAX_PASSWORD_CHARS = 128
SESSION_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
# The largest key a database integer column holds; larger ids are refused as invalid.
MAX_USER_ID = 2**63 - 1
UserId = Annotated[int, Field(strict=True, ge=1, le=MAX_USER_ID)]

router = APIRouter(tags=["assistant"], responses=AUTH_RESPONSES)


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
    data: dict | None = None
    session_id: str | None = None


def _assistant(connection: HTTPConnection) -> Assistant:
    """The app's Assistant, for HTTP and WebSocket routes alike."""
    return connection.app.state.assistant


AssistantDep = Annotated[Assistant, Depends(_assistant)]

# The answers every user-data route may give besides its own (documented in OpenAPI).
GUARDED_RESPONSES: dict[int | str, dict[str, str]] = {
    409: {"description": "A request with this Idempotency-Key is still running"},
    422: {"description": "Invalid parameters, or an Idempotency-Key used for another request"},
    429: {"description": "Too many requests (seeds/002's error body, Retry-After)"},
}


@router.post(
    "/assistant",
    response_model=AssistantResponse,
    responses={
        404: {"model": AssistantResponse, "description": "User not found"},
        **GUARDED_RESPONSES,
    },
)
def assistant(
    body: AssistantRequest,
    assistant: AssistantDep,
    request: Request,
    caller: Caller,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    acting_for(caller, body.user_id)
    spend_request(request, body.user_id)

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
    return idempotent(request, idempotency_key, body.user_id, "assistant", payload, run)
