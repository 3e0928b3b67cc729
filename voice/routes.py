"""WS /ws/voice, the voice channel, and the web app at `/`.

The socket is a thin adapter: its frames are decoded (voice/browser_protocol.py, the wire
format) and go to one `VoiceSession`; what the session says is encoded back, the reply's
audio paced by a playout (voice/playout.py).
"""

import asyncio
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status
from fastapi.responses import HTMLResponse

from banking.api.deps import BankDep, close_code_for, known_user, over_limit, token_ended
from banking.db import DATABASE_UNREACHABLE
from banking.refusals import BANK_UNREACHABLE
from dialogue.api.deps import SESSION_ID_PATTERN, AssistantDep
from voice import browser_protocol as wire
from voice.deps import VoiceDep, text_message_limit
from voice.events import AudioChunk, AudioEnd, AudioStart, Error, VoiceEvent
from voice.playout import Playout
from voice.session import VoiceServices, VoiceSession, VoiceSettings

STATIC = Path(__file__).resolve().parent / "static"

router = APIRouter(tags=["voice"])

TOO_MANY_SOCKETS = "Too many voice connections for this user: close one and try again."


class SocketOutput:
    """A session's events as JSON text frames and its speech as binary frames, in order.

    The speech is paced by a playout at most `voice.playback_lead_ms` ahead of the
    listener, in frames of `voice.audio_chunk_ms`; its `audio_end` follows its last frame.
    """

    def __init__(self, websocket: WebSocket, settings: VoiceSettings) -> None:
        self._websocket = websocket
        self._sending = asyncio.Lock()
        self._frame_ms = settings.audio_chunk_ms
        self._playout = Playout(self._send_bytes, settings.playback_lead_ms / 1000)
        self._sample_rate = 0  # of the reply's speech, from its AudioStart

    async def send(self, event: VoiceEvent | wire.Pong) -> None:
        if isinstance(event, AudioChunk):
            rate = self._sample_rate
            for frame in wire.audio_frames(event.pcm16, rate, self._frame_ms):
                self._playout.queue(frame, wire.frame_seconds(frame, rate))
            await self._playout.within(self._playout.lead_s)
            return
        if isinstance(event, AudioStart):
            self._sample_rate = event.sample_rate
        elif isinstance(event, AudioEnd):
            if event.interrupted:
                self._playout.interrupt()
            elif not await self._playout.mark():
                return  # the socket failed: nobody is listening
        await self.send_text(wire.encode(event))

    async def send_text(self, text: str) -> None:
        async with self._sending:
            await self._websocket.send_text(text)

    async def close(self) -> None:
        await self._playout.close()

    async def _send_bytes(self, frame: bytes) -> None:
        async with self._sending:
            await self._websocket.send_bytes(frame)


@router.get("/", include_in_schema=False)
def web_app(bank: BankDep) -> HTMLResponse:
    """The web app (voice/static/). In demo mode its page says so (`data-demo-mode`), and
    it offers to try the assistant as a demo user without signing in."""
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    if bank.demo_mode:
        page = page.replace('data-demo-mode="false"', 'data-demo-mode="true"', 1)
    return HTMLResponse(page)


@router.websocket("/ws/voice")
async def voice_socket(websocket: WebSocket, assistant: AssistantDep, voice: VoiceDep) -> None:
    await websocket.accept()
    user_id = await known_user(websocket, assistant)
    if isinstance(user_id, str) or voice is None:
        problem = user_id if isinstance(user_id, str) else "The voice channel is off here."
        await websocket.send_text(wire.encode(Error(problem)))
        await websocket.close(code=close_code_for(problem))
        return
    session_id = websocket.query_params.get("session_id")
    if session_id is not None and not re.fullmatch(SESSION_ID_PATTERN, session_id):
        await websocket.send_text(wire.encode(Error("That session_id is not valid.")))
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION)
        return
    if voice.sockets[user_id] >= voice.settings.max_sockets_per_user:
        await websocket.send_text(wire.encode(Error(TOO_MANY_SOCKETS)))
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION)
        return
    voice.sockets[user_id] += 1
    try:
        await _converse(websocket, voice, user_id, session_id)
    finally:
        voice.sockets[user_id] -= 1
        if not voice.sockets[user_id]:
            del voice.sockets[user_id]


async def _converse(
    websocket: WebSocket, voice: VoiceServices, user_id: int, session_id: str | None
) -> None:
    output = SocketOutput(websocket, voice.settings)

    async def admit() -> str | None:
        """Each turn, like each chat message: the token still good, the user within limits."""
        return await token_ended(websocket, user_id) or await over_limit(websocket, user_id)

    # ?session_id= (the one a ready event named) continues that conversation, on any process.
    session = VoiceSession(voice, user_id, output, session_id, admit=admit)
    max_text_bytes = text_message_limit(websocket)
    try:
        try:
            await session.start()  # reads the user's contact names
        except DATABASE_UNREACHABLE:
            await output.send(Error(BANK_UNREACHABLE))
            await websocket.close(code=close_code_for(BANK_UNREACHABLE))
            return
        while True:
            frame = await websocket.receive()
            if frame["type"] == "websocket.disconnect":
                return
            try:
                await _dispatch(frame, session, output, max_text_bytes)
            except wire.ProtocolError as problem:
                await output.send(Error(str(problem)))
    except WebSocketDisconnect:
        return  # the caller hung up, perhaps mid-reply: nothing was half-done
    finally:
        await session.close()
        await output.close()


async def _dispatch(
    frame: Mapping[str, Any], session: VoiceSession, output: SocketOutput, max_text_bytes: int
) -> None:
    """Hand one frame to the session; raises ProtocolError, in words, for a bad one."""
    audio = frame.get("bytes")
    if audio is not None:
        await session.hear(wire.decode_audio(audio))
        return
    message = wire.decode_message(frame.get("text") or "", max_text_bytes)
    if isinstance(message, wire.PasswordMessage):
        await session.password(message.password)
    elif isinstance(message, wire.TextMessage):
        await session.text(message.text)
    elif isinstance(message, wire.EndOfSpeechMessage):
        await session.end_of_speech()
    else:
        await output.send(wire.Pong())
