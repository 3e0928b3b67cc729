"""POST /telephony/twilio/voice (the call webhook) and WS /telephony/twilio/stream.

The wire format is voice/twilio.py's; the call is a `PhoneCall` (voice/phone.py), whose
transport here is the stream's WebSocket. Who may place calls: with `twilio.auth_token`
set, only requests signed by Twilio; without it, only in demo mode (a test bench), else
the webhook answers 503. Either way a stream is believed about its caller only with the
ticket the webhook put in its TwiML.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Form, Request, Response, WebSocket, status
from fastapi.requests import HTTPConnection
from pydantic import ValidationError
from starlette.datastructures import URL

from banking.api.deps import over_limit
from banking.bank import Bank
from banking.store import StoreUnavailable
from voice import twilio
from voice.deps import VoiceDep, bank_of, phone_settings, twilio_settings
from voice.phone import PhoneCall
from voice.session import VoiceServices

log = logging.getLogger(__name__)

router = APIRouter(prefix="/telephony/twilio", tags=["telephony"])

NOT_AVAILABLE = "Sorry, telephone banking is not available right now. Please call again later."
TWIML = "application/xml"


@router.post("/voice", response_class=Response)
async def call_webhook(
    request: Request,
    voice: VoiceDep,
    caller: Annotated[str, Form(alias="From", max_length=64)],
    call_sid: Annotated[str, Form(alias="CallSid", max_length=64)],
    stir: Annotated[str, Form(alias="StirVerstat", max_length=64)] = "",
) -> Response:
    """Twilio's call webhook: TwiML connecting the call to the media stream."""
    settings = twilio_settings(request)
    if settings.auth_token:
        form = (await request.form()).multi_items()
        fields = [(name, value) for name, value in form if isinstance(value, str)]
        header = request.headers.get("X-Twilio-Signature")
        if not twilio.signed_by_twilio(settings.auth_token, _public(request), fields, header):
            log.warning("twilio webhook: refused a request without a valid signature")
            return Response("Bad signature.", status.HTTP_403_FORBIDDEN, media_type="text/plain")
    elif not bank_of(request).demo_mode:
        message = "Twilio is not set up here: twilio.auth_token is empty."
        return Response(message, status.HTTP_503_SERVICE_UNAVAILABLE, media_type="text/plain")
    if voice is None:
        return Response(twilio.say_and_hang_up_twiml(NOT_AVAILABLE), media_type=TWIML)
    secret = bank_of(request).tokens.secret
    verified = settings.skip_pin_when_verified and stir == twilio.STIR_ATTESTED
    parameters = {
        "caller": caller,
        "verified": "1" if verified else "",
        "ticket": twilio.ticket(secret, call_sid, caller, verified),
    }
    twiml = twilio.connect_stream_twiml(_stream_url(request), parameters)
    return Response(twiml, media_type=TWIML)


def _public(request: Request) -> str:
    """The URL Twilio called (and signed): under `twilio.public_url` when it is set."""
    public_url = twilio_settings(request).public_url
    if not public_url:
        return str(request.url)
    return str(URL(public_url.rstrip("/") + request.url.path).replace(query=request.url.query))


def _stream_url(request: Request) -> str:
    public = URL(_public(request))
    url = public.replace(path=request.url_for("twilio_stream").path, query="")
    return str(url.replace(scheme="wss" if public.scheme == "https" else "ws"))


class TwilioTransport:
    """A call's audio and commands as Twilio stream messages on the WebSocket."""

    def __init__(self, websocket: WebSocket, stream_sid: str) -> None:
        self.websocket = websocket
        self.stream_sid = stream_sid
        self._sending = asyncio.Lock()
        self._closed = False

    async def send_frame(self, samples: np.ndarray) -> None:
        await self._send(twilio.media_message(self.stream_sid, samples))

    async def clear(self) -> None:
        await self._send(twilio.clear_message(self.stream_sid))

    async def reply_sent(self, name: str) -> None:
        await self._send(twilio.mark_message(self.stream_sid, name))  # echoed once played

    async def hang_up(self) -> None:
        """Closing the stream ends a <Connect><Stream> call: no TwiML follows it."""
        async with self._sending:
            if not self._closed:
                self._closed = True
                with contextlib.suppress(Exception):
                    await self.websocket.close()

    async def _send(self, text: str) -> None:
        async with self._sending:
            if self._closed:
                return
            try:
                await self.websocket.send_text(text)
            except Exception:  # the caller hung up: nothing left to tell
                self._closed = True


def _calls_taken(connection: HTTPConnection) -> bool:
    """Whether this server takes calls: Twilio signs its webhooks, or demo mode."""
    return bool(twilio_settings(connection).auth_token) or bank_of(connection).demo_mode


@router.websocket("/stream", name="twilio_stream")
async def media_stream(websocket: WebSocket, voice: VoiceDep) -> None:
    """A call's media. Refused (HTTP 403) when telephony is off; closed when no valid
    `start` comes within `twilio.start_timeout_s` (1008) or a message is too long (1009)."""
    if voice is None or not _calls_taken(websocket):
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION)
        return
    await websocket.accept()
    call: PhoneCall | None = None
    starting: asyncio.Task[bool] | None = None
    start_by = time.monotonic() + twilio_settings(websocket).start_timeout_s
    try:
        while True:
            waiting = None if call is not None else max(0.0, start_by - time.monotonic())
            try:
                frame = await asyncio.wait_for(websocket.receive(), waiting)
            except TimeoutError:
                log.warning("twilio stream: no valid start in time; closed")
                await websocket.close(code=status.WS_1008_POLICY_VIOLATION)
                return
            if frame["type"] == "websocket.disconnect":
                return
            if len(frame.get("text") or frame.get("bytes") or "") > twilio.MAX_MESSAGE_CHARS:
                log.warning("twilio stream: a message too long for the protocol; closed")
                await websocket.close(code=status.WS_1009_MESSAGE_TOO_BIG)
                return
            message = _read(frame)
            if message is None:
                continue
            if isinstance(message, twilio.Start):
                if call is not None:
                    log.warning("twilio stream: a second start message was ignored")
                    continue
                call = await _new_call(websocket, voice, message)
                if call is None:
                    await websocket.close(code=status.WS_1008_POLICY_VIOLATION)
                    return
                starting = asyncio.create_task(call.start())  # the socket is read meanwhile
            elif isinstance(message, twilio.Stop):
                return
            elif call is None:
                continue  # `connected`, or anything before `start`
            elif isinstance(message, twilio.Media):
                try:
                    audio = twilio.media_audio(message)
                except ValueError:
                    log.warning("twilio stream %s: a media payload was not valid", call.call_id)
                    continue
                await call.hear(audio)
            elif isinstance(message, twilio.Dtmf):
                await call.dtmf(message.dtmf.digit)
            elif isinstance(message, twilio.Mark):
                call.played(message.mark.name)
    finally:
        if starting is not None:
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await starting
        if call is not None:
            await call.close()
            log.info("twilio stream %s: call ended", call.call_id)


def _read(frame: Mapping[str, Any]) -> twilio.TwilioMessage | None:
    """The message in a frame, or None (logged) when it is not one this bridge knows."""
    text = frame.get("text")
    if text is None:
        log.warning("twilio stream: a binary frame was ignored")
        return None
    try:
        return twilio.TWILIO_MESSAGE.validate_json(text)
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        log.warning("twilio stream: ignored a message (%s at %s)", first["type"], first["loc"])
        return None


async def _new_call(
    websocket: WebSocket, voice: VoiceServices, message: twilio.Start
) -> PhoneCall | None:
    """The call a `start` message opens, or None (logged) when it may not be one."""
    start = message.start
    caller = start.customParameters.get("caller", "")
    ticket = start.customParameters.get("ticket", "")
    verified = start.customParameters.get("verified") == "1"
    bank = bank_of(websocket)
    if not twilio.ticket_valid(bank.tokens.secret, ticket, start.callSid, caller, verified):
        log.warning("twilio stream: refused a stream without a valid ticket")
        return None
    if not twilio.is_phone_audio(start.mediaFormat):
        log.warning("twilio stream: the media format is not 8 kHz μ-law")
        return None
    if not await asyncio.to_thread(_first_use, bank, ticket):
        log.warning("twilio stream: refused a ticket that already opened a stream")
        return None
    transport = TwilioTransport(websocket, start.streamSid)

    async def admit() -> str | None:
        """Each turn counts toward the user's request limit, as a chat message does."""
        assert call.user_id is not None
        return await over_limit(websocket, call.user_id)

    call = PhoneCall(
        voice,
        transport,
        caller,
        phone_settings(websocket),
        channel="twilio",
        call_id=start.callSid,
        admit=admit,
        caller_verified=verified,
    )
    return call


def _first_use(bank: Bank, ticket: str) -> bool:
    """Claim the ticket: True for the stream that uses it first, on any server process."""
    try:
        uses = bank.store.increment(f"twilio-ticket:{ticket}", twilio.TICKET_TTL_S + 1)
    except StoreUnavailable:
        return False
    return uses == 1
