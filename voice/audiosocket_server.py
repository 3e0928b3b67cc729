"""Asterisk AudioSocket calls: a TCP server, one phone call per connection.

Asterisk's dialplan application `AudioSocket(uuid,host:port)` connects here for each call
and sends the call's UUID, then the caller's audio (8 kHz signed linear, 20 ms frames) and
the keys they press; what this side sends back is played to the caller.

AudioSocket carries no caller number, only the UUID, so the dialplan registers the call
first: `POST /telephony/audiosocket/calls` (form fields `caller` and `secret`, the shared
`registration_secret`), which answers with a new random UUID for that caller. The dialplan
passes it to AudioSocket() (docs/telephony.md has the dialplan). A UUID
is good for one connection within `registration_ttl_s`; a connection with a UUID nobody
registered is a call from an unknown number. Registrations live in the session store
(Redis when configured), so any server process may take one.

The server runs in the app's process, started and stopped with it (server.py's lifespan):
calls share its loaded speech models and its assistant, as the other channels do. One
process on a host listens on the port: in another one (`server.py --workers N`, or a
second server) the port is taken, so it stands by and tries again every
`STANDBY_RETRY_S`, taking over when the listening process stops.

Every connection is its own call, with its own voice session, VAD and playback, in its own
task: a malformed message or a dropped connection ends that call alone. A message whose
content is wrong (audio of odd length, an unknown type) is logged and skipped, the call
going on; a connection that ends mid-message, an error message from Asterisk or a first
message that is not the UUID ends the call. A turn already under way when the connection
drops runs to its end in the ledger (a transfer is one database transaction): nothing is
half-done, and the caller can hear about it on their next call.
"""

import asyncio
import contextlib
import errno
import hmac
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Form, HTTPException, Request, status
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from banking.api.ratelimit import limit_message
from banking.limits import Limits
from banking.store import KeyValueStore
from voice import audiosocket as wire
from voice.phone import PhoneCall, PhoneSettings
from voice.session import VoiceServices

log = logging.getLogger(__name__)

READ_BYTES = 65536
MIN_SECRET_CHARS = 16
REGISTRATION_KEY = "audiosocket-call:"
# How often a process standing by tries to take the AudioSocket port over.
STANDBY_RETRY_S = 2.0


class AudioSocketSettings(BaseModel):
    """Values come from config.yaml (audiosocket), which documents each key."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool
    host: str
    port: int = Field(ge=0, le=65535)
    registration_secret: str
    registration_ttl_s: int = Field(ge=1)
    first_message_timeout_s: float = Field(gt=0)

    @model_validator(mode="after")
    def _secret_when_enabled(self) -> "AudioSocketSettings":
        if self.enabled and len(self.registration_secret) < MIN_SECRET_CHARS:
            raise ValueError(
                f"audiosocket.registration_secret must be at least "
                f"{MIN_SECRET_CHARS} characters when AudioSocket is enabled"
            )
        return self


class CallRegistry:
    """Caller numbers registered for the UUIDs of calls about to connect, each good once."""

    def __init__(self, store: KeyValueStore, ttl_s: int) -> None:
        self._store = store
        self._ttl_s = ttl_s

    def register(self, caller: str) -> uuid.UUID:
        call_id = uuid.uuid4()
        self._store.save(REGISTRATION_KEY + str(call_id), caller, self._ttl_s)
        return call_id

    def claim(self, call_id: uuid.UUID) -> str | None:
        """The caller registered for this UUID, which is then forgotten; None if none.

        One atomic step (GETDEL in Redis): of two connections with the same UUID, on any
        server processes, one gets the caller and the other is a call from nobody."""
        return self._store.take(REGISTRATION_KEY + str(call_id))


class SocketTransport:
    """A call's side of one AudioSocket connection (voice.phone.PhoneTransport)."""

    def __init__(self, writer: asyncio.StreamWriter, lead_s: float) -> None:
        self._writer = writer
        self._lead_s = lead_s
        self._lock = asyncio.Lock()
        self.call: PhoneCall | None = None

    async def send_frame(self, samples: np.ndarray) -> None:
        await self._send(wire.audio_of(samples))

    async def clear(self) -> None:
        """Nothing to tell Asterisk: it holds no audio, it forwards each frame as it comes."""

    async def reply_sent(self, name: str) -> None:
        """Asterisk reports no playback: the reply has played out once the frames sent
        ahead of real time have."""
        call = self.call
        if call is not None:
            asyncio.get_running_loop().call_later(self._lead_s, call.played, name)

    async def hang_up(self) -> None:
        """Tell Asterisk the call is over and close the connection (its reader sees the end)."""
        with contextlib.suppress(ConnectionError):
            await self._send(wire.hangup())
        self._writer.close()

    async def _send(self, message: bytes) -> None:
        async with self._lock:
            if self._writer.is_closing():
                raise ConnectionResetError("the AudioSocket connection is closed")
            self._writer.write(message)
            await self._writer.drain()


class AudioSocketServer:
    def __init__(
        self,
        settings: AudioSocketSettings,
        registry: CallRegistry,
        services: VoiceServices,
        phone: PhoneSettings,
        limits: Limits,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.services = services
        self.phone = phone
        self.limits = limits
        self._server: asyncio.Server | None = None
        self._standby: asyncio.Task[None] | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The port listened on (the one given, or the one chosen for port 0)."""
        assert self._server is not None, "the AudioSocket server is not started"
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> None:
        """Listen; if another process listens on the port already, stand by (see above)."""
        if not await self._listen():
            log.info("AudioSocket: port %s is taken; standing by", self.settings.port)
            self._standby = asyncio.create_task(self._stand_by())

    async def _listen(self) -> bool:
        try:
            self._server = await asyncio.start_server(
                self._connection, self.settings.host, self.settings.port
            )
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            return False
        log.info("AudioSocket: listening on %s:%s", self.settings.host, self.port)
        return True

    async def _stand_by(self) -> None:
        while not await self._listen():
            await asyncio.sleep(STANDBY_RETRY_S)

    async def stop(self) -> None:
        """Stop listening and end every call (each is told with a hangup message)."""
        if self._standby is not None:
            self._standby.cancel()
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(self._connections)
        if self._server is not None:
            await self._server.wait_closed()

    def calls(self) -> int:
        return len(self._connections)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        transport = SocketTransport(writer, self.phone.playback_lead_ms / 1000)
        try:
            await self._serve(reader, transport)
        except Exception:
            log.exception("AudioSocket: the call failed")
        finally:
            self._connections.discard(task)
            with contextlib.suppress(Exception):
                await asyncio.shield(transport.hang_up())

    async def _serve(self, reader: asyncio.StreamReader, transport: SocketTransport) -> None:
        messages = _messages(reader)
        try:
            first = await asyncio.wait_for(
                anext(messages, None), self.settings.first_message_timeout_s
            )
        except TimeoutError:
            log.error("AudioSocket: no call id within %ss", self.settings.first_message_timeout_s)
            return
        if not isinstance(first, wire.CallId):
            log.error("AudioSocket: the first message must be the call id, got %s", first)
            return
        caller = await asyncio.to_thread(self.registry.claim, first.id)
        if caller is None:
            log.warning("AudioSocket: call %s was not registered: an unknown caller", first.id)
        call = PhoneCall(
            self.services,
            transport,
            caller or "",
            self.phone,
            channel="audiosocket",
            call_id=str(first.id),
            admit=lambda: self._over_limit(call),
        )
        transport.call = call
        try:
            await call.start()  # an unknown caller is told so, and the call hangs up
            await _converse(messages, call, first.id)
        finally:
            await call.close()

    async def _over_limit(self, call: PhoneCall) -> str | None:
        """Each turn counts toward the caller's request limit, as a chat message does."""
        assert call.user_id is not None
        quota = await asyncio.to_thread(self.limits.request, call.user_id)
        if quota is None or not quota.exceeded:
            return None
        return limit_message(quota, self.limits.settings.requests_window_s)


async def _messages(reader: asyncio.StreamReader) -> AsyncIterator[wire.Message]:
    """The connection's messages until it closes (a message cut off by the end is logged)."""
    decoder = wire.FrameDecoder()
    while True:
        try:
            data = await reader.read(READ_BYTES)
        except ConnectionError:
            data = b""
        if not data:
            if decoder.pending():
                log.error(
                    "AudioSocket: the connection ended %d bytes into a message", decoder.pending()
                )
            return
        for message in decoder.feed(data):
            yield message


async def _converse(
    messages: AsyncIterator[wire.Message], call: PhoneCall, call_id: uuid.UUID
) -> None:
    """Hand the caller's audio and keys to the call until the call or the connection ends."""
    async for message in messages:
        if isinstance(message, wire.Audio):
            await call.hear(message.samples())
        elif isinstance(message, wire.Dtmf):
            await call.dtmf(message.key)
        elif isinstance(message, wire.Hangup):
            log.info("AudioSocket: call %s hung up", call_id)
            return
        elif isinstance(message, wire.Error):
            log.error("AudioSocket: call %s: Asterisk error %s", call_id, message.describe())
            return
        elif isinstance(message, wire.Malformed):
            log.error("AudioSocket: call %s: skipped a message: %s", call_id, message.problem)
        else:
            log.warning("AudioSocket: call %s: a second call id is ignored", call_id)
    log.info("AudioSocket: call %s: the connection closed", call_id)


router = APIRouter(tags=["telephony"])


@router.post("/telephony/audiosocket/calls", response_class=PlainTextResponse, status_code=201)
async def register_call(
    request: Request,
    caller: Annotated[str, Form(max_length=32)],
    secret: Annotated[str, Form(max_length=256)],
) -> str:
    """For Asterisk's dialplan: the UUID to pass to AudioSocket() for a call from `caller`."""
    server: AudioSocketServer | None = request.app.state.services.audiosocket
    if server is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "AudioSocket is off here")
    expected = server.settings.registration_secret.encode()
    if not hmac.compare_digest(secret.encode(), expected):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "wrong registration secret")
    call_id = await asyncio.to_thread(server.registry.register, caller)
    return str(call_id)
