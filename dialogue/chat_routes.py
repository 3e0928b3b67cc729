"""The chat channels of seeds/000: POST /api/ai/chat and WS /api/ai/chat/ws.

Both are conversations (a transfer can be set up over several messages). The WebSocket
is one conversation per connection; the HTTP fallback returns a `session_id` to send
back. Until bearer tokens arrive (the security issue) the user is named by `user_id`, as
on /assistant. Beyond seeds/000: `chat_end` carries the reply's `page` and `data`, and a
`{"type": "password"}` message answers "Please confirm with your password".
"""

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StringConstraints, ValidationError
from starlette.concurrency import run_in_threadpool

from dialogue.assistant import Assistant
from dialogue.reply import AssistantReply
from dialogue.routes import (
    MAX_MESSAGE_CHARS,
    MAX_PASSWORD_CHARS,
    SESSION_ID_PATTERN,
    AssistantDep,
)

MAX_FRAME_BYTES = 64 * 1024
POLICY_VIOLATION = 1008

router = APIRouter(tags=["chat"])

Message = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_MESSAGE_CHARS)
]
Password = Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_CHARS)]


class ChatRequest(BaseModel):
    message: Message
    user_id: Annotated[int, Field(strict=True, ge=1)]
    session_id: Annotated[str | None, Field(pattern=SESSION_ID_PATTERN)] = None
    password: Password | None = None


class ChatResponse(BaseModel):
    response: str
    session_id: str
    page: str | None
    data: dict[str, Any] | None


@router.post("/api/ai/chat", responses={404: {"model": ChatResponse}})
def chat(body: ChatRequest, assistant: AssistantDep) -> JSONResponse:
    """One chat message; send the returned `session_id` back to continue the conversation."""
    session_id = body.session_id or uuid.uuid4().hex
    answer = assistant.turn(body.user_id, body.message, body.password, session_id)
    content = ChatResponse(
        response=answer.reply, session_id=session_id, page=answer.page, data=answer.data
    )
    return JSONResponse(content.model_dump(), status_code=200 if answer.user_found else 404)


class ChatMessage(BaseModel):
    type: str
    message: Message | None = None
    password: Password | None = None


def chunks(text: str) -> list[str]:
    """Word by word, each word with the space after it: joined they give the text back."""
    words = text.split(" ")
    return [word + " " for word in words[:-1]] + [words[-1]]


def _user_id(websocket: WebSocket, assistant: Assistant) -> int | None:
    raw = websocket.query_params.get("user_id", "")
    user_id = int(raw) if raw.isdigit() else None
    if user_id is None or assistant.directory.person(user_id) is None:
        return None
    return user_id


@router.websocket("/api/ai/chat/ws")
async def chat_socket(websocket: WebSocket) -> None:
    assistant: Assistant = websocket.app.state.assistant
    await websocket.accept()
    user_id = _user_id(websocket, assistant)
    if user_id is None:
        await websocket.send_json({"type": "error", "message": "Unknown or missing user_id."})
        await websocket.close(code=POLICY_VIOLATION)
        return
    session_id = uuid.uuid4().hex
    try:
        while True:
            frame = await websocket.receive()
            if frame["type"] == "websocket.disconnect":
                return
            message = _read(frame)
            if isinstance(message, str):
                await websocket.send_json({"type": "error", "message": message})
            elif message.type == "ping":
                await websocket.send_json({"type": "pong"})
            else:
                text = message.message or ""
                answer = await run_in_threadpool(
                    assistant.turn, user_id, text, message.password, session_id
                )
                await _stream(websocket, answer)
    except WebSocketDisconnect:
        return


def _read(frame: dict[str, Any]) -> ChatMessage | str:
    """The client's message, or what is wrong with it in words."""
    text = frame.get("text")
    if text is None:
        return "Send JSON text messages, not binary frames."
    if len(text.encode()) > MAX_FRAME_BYTES:
        return f"Messages are limited to {MAX_FRAME_BYTES} bytes."
    try:
        message = ChatMessage.model_validate(json.loads(text))
    except json.JSONDecodeError:
        return "Messages must be JSON objects."
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "message"
        return f"Invalid {where}: {first['msg']}."
    if message.type not in ("chat", "password", "ping"):
        return 'Unknown type: use "chat", "password" or "ping".'
    if message.type == "chat" and message.message is None:
        return 'A "chat" message needs a "message" text.'
    if message.type == "password" and message.password is None:
        return 'A "password" message needs a "password".'
    return message


async def _stream(websocket: WebSocket, answer: AssistantReply) -> None:
    await websocket.send_json({"type": "chat_start"})
    for chunk in chunks(answer.reply):
        await websocket.send_json({"type": "chat_chunk", "content": chunk})
    await websocket.send_json({"type": "chat_end", "page": answer.page, "data": answer.data})
