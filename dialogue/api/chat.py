"""The chat channels of seeds/000: POST /api/ai/chat and WS /api/ai/chat/ws.

Both are thin adapters around `Assistant.turn()`, and both are conversations: a transfer
can be set up over several messages. A WebSocket is one conversation (its session id is
made at connect and never shown); the HTTP fallback returns a `session_id` to send back.
The user is the access token's (the Authorization header, or `?token=` on the socket);
a `user_id` in the body or query string is optional and must be the token's user. In demo
mode a request without a token names its user by `user_id` (banking/api/deps.py).

Beyond seeds/000: the HTTP reply carries seeds/002's conversation `metadata`
(dialogue/monitoring/conversation.py); `chat_end` carries the reply's `page` and `data`
(`data.awaiting` and `data.require_password` say what the assistant waits for), a
`{"type": "password"}` message answers "Please confirm with your password", and every
bad message gets an `error` event while the socket stays open. Passwords are passed to
the turn and nowhere else: never echoed, logged or kept.
"""

import logging
import re
import uuid
from collections.abc import Mapping
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StringConstraints, TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from banking.api.deps import (
    AUTH_RESPONSES,
    GUARDED_RESPONSES,
    MAX_PASSWORD_CHARS,
    BankDep,
    Caller,
    IdempotencyKey,
    UserId,
    acting_user,
    close_code_for,
    idempotent,
    known_user,
    over_limit,
    rate_limited,
    token_ended,
)
from banking.db import DATABASE_UNREACHABLE
from dialogue.api.deps import MAX_MESSAGE_CHARS, SESSION_ID_PATTERN, AssistantDep, DialogueDep
from dialogue.assistant import Assistant
from dialogue.monitoring.conversation import ConversationMetadata, TurnWatch
from dialogue.reply import AssistantReply, bank_unreachable

log = logging.getLogger(__name__)

router = APIRouter(tags=["chat"], responses=AUTH_RESPONSES)

Message = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_MESSAGE_CHARS)
]
# As on /assistant, an empty password counts as none.
Password = Annotated[str, Field(max_length=MAX_PASSWORD_CHARS)]


class ChatRequest(BaseModel):
    message: Message
    user_id: Annotated[
        UserId | None,
        Field(description="The token's user (optional); in demo mode, whom to act for"),
    ] = None
    session_id: Annotated[
        str | None, Field(pattern=SESSION_ID_PATTERN, description="Continues a conversation")
    ] = None
    password: Annotated[Password | None, Field(description="Confirms a transfer")] = None


class ChatResponse(BaseModel):
    response: str
    session_id: str = Field(description="Send it back to continue the conversation")
    page: str | None
    data: dict[str, Any] | None
    metadata: ConversationMetadata = Field(description="seeds/002's conversation metadata")


def _checked(body: ChatRequest, caller: Caller) -> ChatRequest:
    """The message with its user: the token's, whom a `user_id` in it must name."""
    body.user_id = acting_user(caller, body.user_id)  # filled in if left out
    return body


def _sender(body: ChatRequest) -> int:
    assert body.user_id is not None  # _checked filled it in
    return body.user_id


@router.post(
    "/api/ai/chat",
    response_model=ChatResponse,
    responses={404: {"model": ChatResponse, "description": "User not found"}, **GUARDED_RESPONSES},
)
def chat(
    body: Annotated[ChatRequest, rate_limited(_checked, _sender)],
    assistant: AssistantDep,
    bank: BankDep,
    dialogue: DialogueDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """One chat message: the HTTP fallback of the WebSocket chat."""
    user_id = _sender(body)
    session_id = body.session_id or uuid.uuid4().hex

    def run(_transfer_id: str | None) -> JSONResponse:
        # A conversation's transfer has its own id, kept with the conversation.
        watch = TurnWatch(bank.audit, dialogue.pipeline, user_id, "chat")
        answer = assistant.turn(user_id, body.message, body.password, session_id, channel="chat")
        reply, metadata = watch.finish(body.message, answer, session_id)
        content = ChatResponse(
            response=reply,
            session_id=session_id,
            page=answer.page,
            data=answer.data,
            metadata=metadata,
        )
        return JSONResponse(content.model_dump(), status_code=200 if answer.user_found else 404)

    payload = {**body.model_dump(exclude={"password"}), "password_given": bool(body.password)}
    return idempotent(bank, idempotency_key, user_id, "chat", payload, run)


class ChatEvent(BaseModel):
    type: Literal["chat"]
    message: Message
    password: Password | None = None


class PasswordEvent(BaseModel):
    type: Literal["password"]
    password: Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_CHARS)]


class PingEvent(BaseModel):
    type: Literal["ping"]


ClientEvent = TypeAdapter(
    Annotated[ChatEvent | PasswordEvent | PingEvent, Field(discriminator="type")]
)
WORD = re.compile(r"\S+\s*|\s+")


def chunks(text: str) -> list[str]:
    """Each word with the spaces after it (leading spaces alone): joined, they are `text`."""
    return WORD.findall(text)


@router.websocket("/api/ai/chat/ws")
async def chat_socket(websocket: WebSocket, assistant: AssistantDep, dialogue: DialogueDep) -> None:
    """One conversation per connection; see the module docstring for the messages."""
    await websocket.accept()
    user_id = await known_user(websocket, assistant)
    if isinstance(user_id, str):
        await _refuse(websocket, user_id)
        return
    session_id = uuid.uuid4().hex
    max_bytes = dialogue.max_ws_message_bytes
    try:
        while True:
            frame = await websocket.receive()
            if frame["type"] == "websocket.disconnect":
                return
            event = _read(frame, max_bytes)
            if isinstance(event, str):
                await _send_error(websocket, event)
            elif isinstance(event, PingEvent):
                await websocket.send_json({"type": "pong"})
            elif ended := await token_ended(websocket, user_id):
                await _refuse(websocket, ended)
                return
            elif refusal := await over_limit(websocket, user_id):
                await _send_error(websocket, refusal)
            else:
                answer = await _turn(assistant, user_id, event, session_id)
                if answer is None:
                    await _send_error(websocket, "Server error. Please try again.")
                else:
                    await _stream(websocket, answer)
    except WebSocketDisconnect:
        return  # the client left, possibly mid-reply: nothing to clean up


def _read(frame: Mapping[str, Any], max_bytes: int) -> ChatEvent | PasswordEvent | PingEvent | str:
    """The client's event, or what is wrong with the frame in words."""
    text = frame.get("text")
    if text is None:
        return "Send JSON text messages, not binary frames."
    if len(text.encode()) > max_bytes:
        return f"Messages are limited to {max_bytes} bytes."
    try:
        return ClientEvent.validate_json(text)
    except ValidationError as error:
        return _problem(error)


def _problem(error: ValidationError) -> str:
    """The first thing wrong with an event, without repeating what was sent."""
    first = error.errors(include_url=False, include_input=False)[0]
    kind, where = first["type"], first["loc"]
    if kind == "json_invalid":
        return f"Messages must be JSON objects. {first['msg']}."
    if kind == "dict_type":
        return "Messages must be JSON objects."
    if kind.startswith("union_tag"):
        return 'Unknown or missing "type": use "chat", "password" or "ping".'
    field = ".".join(str(part) for part in where[1:])
    return f'Bad "{field}" in a "{where[0]}" message: {first["msg"]}.'


async def _turn(
    assistant: Assistant, user_id: int, event: ChatEvent | PasswordEvent, session_id: str
) -> AssistantReply | None:
    """The assistant's answer, off the event loop; None if the turn failed.

    A password event is an empty utterance with the password: the conversation's answer
    to "confirm with your password".
    """
    text = event.message if isinstance(event, ChatEvent) else ""
    try:
        return await run_in_threadpool(
            partial(assistant.turn, channel="chat-ws"), user_id, text, event.password, session_id
        )
    except DATABASE_UNREACHABLE:  # HTTP's 503, said in the conversation
        return bank_unreachable()
    except Exception:
        # Like HTTP's 500, but the socket stays open. Nothing is half-written: a transfer
        # is one database transaction.
        log.exception("chat turn failed")
        return None


async def _send_error(websocket: WebSocket, message: str) -> None:
    await websocket.send_json({"type": "error", "message": message})


async def _refuse(websocket: WebSocket, message: str) -> None:
    """Say why, then close (1008, or 1013 while the bank cannot be reached)."""
    await _send_error(websocket, message)
    await websocket.close(code=close_code_for(message))


async def _stream(websocket: WebSocket, answer: AssistantReply) -> None:
    await websocket.send_json({"type": "chat_start"})
    for chunk in chunks(answer.reply):
        await websocket.send_json({"type": "chat_chunk", "content": chunk})
    await websocket.send_json({"type": "chat_end", "page": answer.page, "data": answer.data})
