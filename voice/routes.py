"""WS /ws/voice, the voice channel, and the browser voice widget at `/`.

The socket is a thin adapter: binary frames are PCM16LE mono at 16 kHz (up to 1 s each),
text frames are JSON messages; both go to one `VoiceSession`. The protocol is documented
in README.md ("The voice channel").
"""

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, WebSocket, WebSocketDisconnect, status
from fastapi.requests import HTTPConnection
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from banking.api.deps import MAX_PASSWORD_CHARS, known_user, over_limit, token_ended
from dialogue.api.deps import MAX_MESSAGE_CHARS, AssistantDep
from voice.audio import AudioFormatError, pcm16_to_float
from voice.session import VoiceServices, VoiceSession

STATIC = Path(__file__).resolve().parent / "static"
SAMPLE_RATE = 16_000
MAX_AUDIO_FRAME_BYTES = 2 * SAMPLE_RATE  # one second of PCM16

router = APIRouter(tags=["voice"])


class PasswordMessage(BaseModel):
    type: Literal["password"]
    password: Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_CHARS)]


class TextMessage(BaseModel):
    type: Literal["text"]
    text: Annotated[str, Field(min_length=1, max_length=MAX_MESSAGE_CHARS)]


class EndOfSpeechMessage(BaseModel):
    type: Literal["end_of_speech"]


class PingMessage(BaseModel):
    type: Literal["ping"]


ClientMessage = PasswordMessage | TextMessage | EndOfSpeechMessage | PingMessage
CLIENT_MESSAGE = TypeAdapter(Annotated[ClientMessage, Field(discriminator="type")])


def _voice(connection: HTTPConnection) -> VoiceServices | None:
    return connection.app.state.services.voice


VoiceDep = Annotated[VoiceServices | None, Depends(_voice)]


class SocketOutput:
    """A session's events as JSON text frames and its audio as binary frames, in order."""

    def __init__(self, websocket: WebSocket) -> None:
        self._websocket = websocket
        self._sending = asyncio.Lock()

    async def event(self, message: dict[str, Any]) -> None:
        async with self._sending:
            await self._websocket.send_text(json.dumps(message, ensure_ascii=False))

    async def audio(self, pcm16: bytes) -> None:
        async with self._sending:
            await self._websocket.send_bytes(pcm16)


@router.get("/", include_in_schema=False)
def widget() -> FileResponse:
    """The browser voice widget."""
    return FileResponse(STATIC / "index.html")


@router.websocket("/ws/voice")
async def voice_socket(websocket: WebSocket, assistant: AssistantDep, voice: VoiceDep) -> None:
    await websocket.accept()
    output = SocketOutput(websocket)
    user_id = await known_user(websocket, assistant)
    if isinstance(user_id, str) or voice is None:
        problem = user_id if isinstance(user_id, str) else "The voice channel is off here."
        await output.event({"type": "error", "message": problem})
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION)
        return

    async def admit() -> str | None:
        """Each turn, like each chat message: the token still good, the user within limits."""
        return await token_ended(websocket, user_id) or await over_limit(websocket, user_id)

    session = VoiceSession(voice, user_id, output, admit=admit)
    max_text_bytes = websocket.app.state.services.settings.security.max_ws_message_bytes
    await session.start()
    try:
        while True:
            frame = await websocket.receive()
            if frame["type"] == "websocket.disconnect":
                return
            problem = await _dispatch(frame, session, output, max_text_bytes)
            if problem:
                await output.event({"type": "error", "message": problem})
    except WebSocketDisconnect:
        return  # the caller hung up, perhaps mid-reply: nothing was half-done
    finally:
        await session.close()


async def _dispatch(
    frame: dict[str, Any], session: VoiceSession, output: SocketOutput, max_text_bytes: int
) -> str:
    """Hand one frame to the session; what was wrong with it in words, or ""."""
    audio = frame.get("bytes")
    if audio is not None:
        if len(audio) > MAX_AUDIO_FRAME_BYTES:
            return f"Audio frames are limited to 1 second ({MAX_AUDIO_FRAME_BYTES} bytes)."
        try:
            samples = pcm16_to_float(audio)
        except AudioFormatError:
            return "Audio frames are PCM signed 16-bit: an even number of bytes."
        await session.hear(samples)
        return ""
    text = frame.get("text") or ""
    if len(text.encode()) > max_text_bytes:
        return f"Text messages are limited to {max_text_bytes} bytes."
    try:
        message = CLIENT_MESSAGE.validate_json(text)
    except ValidationError as error:
        return _problem(error)
    if isinstance(message, PasswordMessage):
        await session.password(message.password)
    elif isinstance(message, TextMessage):
        await session.text(message.text)
    elif isinstance(message, EndOfSpeechMessage):
        await session.end_of_speech()
    else:
        await output.event({"type": "pong"})
    return ""


def _problem(error: ValidationError) -> str:
    """What is wrong with a text message, without repeating it (it may hold a password)."""
    first = error.errors(include_url=False, include_input=False)[0]
    if first["type"] in ("json_invalid", "model_attributes_type", "dict_type"):
        return "Text messages must be JSON objects; audio goes in binary frames."
    if first["type"].startswith("union_tag"):
        return 'Unknown or missing "type": use "password", "text", "end_of_speech" or "ping".'
    field = ".".join(str(part) for part in first["loc"][1:])
    return f'Bad "{field}" in a "{first["loc"][0]}" message: {first["msg"]}.'
