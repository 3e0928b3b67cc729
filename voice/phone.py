"""One telephone call: a `VoiceSession` behind a phone line's 8 kHz audio and keypad.

A telephony transport (Twilio Media Streams in voice/twilio_routes.py, Asterisk
AudioSocket in voice/audiosocket_server.py) decodes its wire format (voice/twilio.py,
voice/audiosocket.py) and calls the `PhoneCall`:

    call = PhoneCall(services, transport, caller="+15550100001", settings=settings)
    if await call.start():           # False: unknown number, told so; the call hangs up
        await call.hear(samples)         # 8 kHz float samples, any length
        await call.dtmf("1")             # keypad digits, "*" and "#"
        call.played("reply-1")           # the far end played a reply out (Twilio's mark)
    await call.close()               # the far end hung up or the connection dropped

and implements `PhoneTransport` to carry what the call sends back: 20 ms frames of 8 kHz
audio, `clear` when the caller talks over a reply, `reply_sent` after each reply, and
`hang_up`. The call knows no wire format: it hears and sends float samples.

Audio. Caller audio is resampled once, 8 → 16 kHz, by one stream resampler per call
(`upsampler`: libsoxr, or linear interpolation, which whisper heard better on recorded
speech but worse on espeak's: bench/bench_phone.py), for the VAD and the speech-to-text;
each utterance gets `stt_pad_s` of silence around it before whisper hears it. Reply audio
is resampled once, from the TTS rate straight to 8 kHz, by a stream resampler (no clicks
at chunk joins), cut into exact 160-sample frames (the last one padded with silence) and
sent by the call's playout (voice/playout.py) at real time, at most `playback_lead_ms`
ahead, so that a barge-in stops the reply where the caller is. The session's speech is
taken up to `voice.playback_lead_ms` ahead of the caller, as the browser's is.

Who is calling. The caller's number must be registered on a user (banking/phones.py);
an unknown number hears that it is not registered, and the call ends. A number is easily
spoofed, so with `phone.pin_first` (the default) the caller types their PIN before they
hear anything of the account, their name included: checked under the lockout like a
transfer's PIN; a wrong one is asked again, a locked user is told so and the call ends.
A call whose number the network vouches for (`caller_verified`: Twilio's STIR/SHAKEN
attestation A, when the operator trusts it) skips that.

The PIN. While the assistant waits for a transfer's second factor, keypad digits are
collected until "#" ("*" starts again) and handed to the session as a PIN (`factor`
"pin"): checked like the password, by bcrypt and the same lockout. Digits are never
logged, spoken or shown; events and logs say "••••••".
"""

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterator
from typing import Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict

from banking import refusals
from banking.store import StoreUnavailable
from dialogue import reply as say
from voice import events
from voice.audio import (
    PHONE_RATE,
    PIPELINE_RATE,
    LinearUpsampler,
    StreamResampler,
    pcm16_to_float,
)
from voice.events import VoiceEvent
from voice.playout import Playout
from voice.session import MASKED, Admission, VoiceServices, VoiceSession, admit_all

log = logging.getLogger(__name__)

FRAME_SAMPLES = 160  # 20 ms at 8 kHz: what telephony sends and expects
FRAME_S = FRAME_SAMPLES / PHONE_RATE
KEYS = frozenset("0123456789*#ABCD")
# Digits kept before "#": a PIN has at most 8; more are kept only to fail the check.
MAX_DIGITS = 16


class PhoneSettings(BaseModel):
    """Values come from config.yaml (phone), which documents each key."""

    model_config = ConfigDict(extra="forbid")

    playback_lead_ms: int
    hang_up_after_s: float
    stt_pad_s: tuple[float, float]
    upsampler: Literal["linear", "soxr"]
    pin_first: bool


class PhoneTransport(Protocol):
    """What a telephony protocol does for a call; every method is called from its task."""

    async def send_frame(self, samples: np.ndarray) -> None:
        """Send 20 ms of reply audio: exactly 160 float32 samples at 8 kHz, in [-1, 1]."""

    async def clear(self) -> None:
        """The caller talks over the reply: tell the far end to drop the audio it holds."""

    async def reply_sent(self, name: str) -> None:
        """Reply `name`'s last frame was sent. A far end that reports playback (Twilio's
        mark) is asked to, and `PhoneCall.played(name)` is called when it does; a
        transport without that calls `played(name)` at once."""

    async def hang_up(self) -> None:
        """End the call from this side (then the transport calls `PhoneCall.close()`)."""


class PhoneCall:
    """One call: its own session, VAD, resamplers, playout and keypad state."""

    def __init__(
        self,
        services: VoiceServices,
        transport: PhoneTransport,
        caller: str,
        settings: PhoneSettings,
        *,
        channel: str = "phone",
        call_id: str | None = None,
        admit: Admission = admit_all,
        caller_verified: bool = False,
    ) -> None:
        """`caller` is the calling number as the network gives it (E.164 expected);
        `channel` names the protocol in the audit trail and logs ("twilio", ...);
        `admit` is asked before each turn (e.g. the user's request limit);
        `caller_verified`: the network vouches for the number, so no PIN is asked first."""
        self.services = services
        self.transport = transport
        self.caller = caller
        self.settings = settings
        self.channel = channel
        self.call_id = call_id or uuid.uuid4().hex
        self.admit = admit
        self.user_id: int | None = None
        self.session: VoiceSession | None = None
        self._first_name = ""
        self._pin_first = settings.pin_first and not caller_verified
        self._inbound = (
            LinearUpsampler()
            if settings.upsampler == "linear"
            else StreamResampler(PHONE_RATE, PIPELINE_RATE)
        )
        # Reply audio: 20 ms frames paced out to the transport, and where they come from.
        self._playout: Playout[np.ndarray] = Playout(
            transport.send_frame, settings.playback_lead_ms / 1000
        )
        self._session_lead_s = services.settings.playback_lead_ms / 1000
        self._outbound: StreamResampler | None = None  # None: no reply is being received
        self._partial = np.zeros(0, dtype=np.float32)  # less than a frame, waiting for more
        self._replies = 0
        self._reply_name = ""  # the latest reply's
        self._unplayed: str | None = None  # a reply the far end may still be playing
        self._played = asyncio.Event()
        self._announcing: asyncio.Task[None] | None = None
        # Keypad.
        self._awaiting_pin = False
        self._digits = ""

    # -- the transport's calls -----------------------------------------------------------

    async def start(self) -> bool:
        """Identify the caller; greet a registered one (True), or tell an unknown number
        so and hang up (False)."""
        person = await asyncio.to_thread(self.services.assistant.caller, self.caller)
        if person is None:
            log.info("call %s: the calling number is not registered", self.call_id)
            await self._announce(say.UNKNOWN_CALLER)
            await self._hang_up_when_played()
            return False
        self.user_id, self._first_name = person.id, person.first_name
        log.info("call %s: user %s on %s", self.call_id, self.user_id, self.channel)
        if self._pin_first:
            self._awaiting_pin = True
            self._announcing = asyncio.create_task(self._announce(say.PHONE_PIN_FIRST))
            return True
        await self._open_session()
        return True

    async def _open_session(self) -> None:
        """The caller is who they say: the conversation starts with a greeting by name."""
        assert self.user_id is not None
        self.session = VoiceSession(
            self.services,
            self.user_id,
            self,
            session_id=f"phone-{self.call_id}",
            admit=self.admit,
            channel=self.channel,
            factor="pin",
            stt_pad_s=self.settings.stt_pad_s,
        )
        await self.session.start()
        self._announcing = asyncio.create_task(self._announce(say.phone_greeting(self._first_name)))

    async def _sign_in(self, pin: str) -> None:
        """The PIN typed before anything else: the account opens, or it is asked again, or
        (locked, or the counters are down) the caller is told so and the call ends."""
        assert self.user_id is not None
        assistant = self.services.assistant
        try:
            verdict = await asyncio.to_thread(
                assistant.verify_caller, self.user_id, pin, self.channel
            )
        except StoreUnavailable:
            verdict = None
        if verdict == "right":
            await self._open_session()
            return
        if verdict == "wrong":
            self._awaiting_pin = True
            self._announcing = asyncio.create_task(self._announce(say.PHONE_PIN_AGAIN))
            return
        lock_s = assistant.guard.settings.lock_s
        text = refusals.STORE_UNAVAILABLE if verdict is None else say.phone_locked(lock_s)
        self._announcing = asyncio.create_task(self._say_and_hang_up(text))

    async def _say_and_hang_up(self, text: str) -> None:
        await self._announce(text)
        await self._hang_up_when_played()

    async def hear(self, samples: np.ndarray) -> None:
        """The caller's audio: float samples at the telephone's 8 kHz."""
        if self.session is not None:
            await self.session.hear(self._inbound.push(samples))

    async def dtmf(self, key: str) -> None:
        """A key pressed on the caller's keypad: "0"-"9", "*", "#" (or "A"-"D")."""
        if key not in KEYS:
            log.warning("call %s: ignored an unknown keypad key", self.call_id)
            return
        if self.user_id is None or not self._awaiting_pin:
            return  # keys are only a PIN; the digits are not logged: they may be one
        if key == "*":
            self._digits = ""
        elif key == "#":
            pin, self._digits = self._digits, ""
            if pin:
                self._awaiting_pin = False
                log.info("call %s: PIN entered (%s)", self.call_id, MASKED)
                if self.session is None:
                    await self._sign_in(pin)
                else:
                    await self.session.password(pin)
        elif key.isdigit():
            if not self._digits:
                await self._interrupt()  # typing: the prompt need not go on
            self._digits = (self._digits + key)[:MAX_DIGITS]

    def played(self, name: str) -> None:
        """The far end has played reply `name` out (Twilio echoes its mark)."""
        if name == self._unplayed:
            self._unplayed = None
            self._played.set()

    async def close(self) -> None:
        """The call is over (hung up, connection dropped): stop everything it runs.

        A turn already in the assistant finishes there (a confirmed transfer completes and
        is audited); a transfer still waiting for its PIN is never made.
        """
        self._awaiting_pin, self._digits = False, ""
        if self._announcing is not None:
            self._announcing.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._announcing
        await self._playout.close()
        if self.session is not None:
            await self.session.close()

    # -- VoiceOutput: what the session says ----------------------------------------------

    async def send(self, event: VoiceEvent) -> None:
        if isinstance(event, events.SpeechStart):
            await self._interrupt()
        elif isinstance(event, events.Reply):
            self._awaiting_pin = event.awaiting == "password"
            self._digits = ""
        elif isinstance(event, events.AudioStart):
            self._begin_reply(event.sample_rate)
        elif isinstance(event, events.AudioChunk):
            self._add_reply_audio(pcm16_to_float(event.pcm16))
            await self._playout.within(self._session_lead_s)
        elif isinstance(event, events.AudioEnd):
            if event.interrupted:
                await self._interrupt()
            else:
                self._end_reply()
        elif isinstance(event, events.Error):
            await self._announce(event.message)

    # -- inside --------------------------------------------------------------------------

    def _begin_reply(self, sample_rate: int) -> None:
        self._outbound = StreamResampler(sample_rate, PHONE_RATE)
        self._partial = np.zeros(0, dtype=np.float32)
        self._replies += 1
        self._reply_name = self._unplayed = f"reply-{self._replies}"
        self._played.clear()

    def _add_reply_audio(self, samples: np.ndarray) -> None:
        if self._outbound is None:
            return  # a reply the caller interrupted: its remaining audio is dropped
        self._queue_frames(self._outbound.push(samples))

    def _end_reply(self) -> None:
        if self._outbound is None:
            return
        self._queue_frames(self._outbound.push(np.zeros(0, dtype=np.float32), last=True))
        self._outbound = None
        if self._partial.size:
            last = np.pad(self._partial, (0, FRAME_SAMPLES - self._partial.size))
            self._playout.queue(last, FRAME_S)
            self._partial = np.zeros(0, dtype=np.float32)
        name = self._reply_name
        self._playout.mark(lambda: self._reply_sent(name))

    async def _reply_sent(self, name: str) -> None:
        """A reply's last frame is sent: tell the far end, unless another reply began
        since (its mark, after its own frames, says when both have played)."""
        if name == self._reply_name:
            await self.transport.reply_sent(name)

    def _queue_frames(self, samples: np.ndarray) -> None:
        """Cut 8 kHz audio into whole frames for the playout; a remainder waits for more."""
        audio = np.concatenate([self._partial, samples])
        whole = audio.size - audio.size % FRAME_SAMPLES
        for start in range(0, whole, FRAME_SAMPLES):
            self._playout.queue(audio[start : start + FRAME_SAMPLES], FRAME_S)
        self._partial = audio[whole:]

    async def _interrupt(self) -> None:
        """Barge-in: drop the reply's remaining audio, and the far end's if it holds any."""
        self._playout.interrupt()
        self._outbound = None
        self._partial = np.zeros(0, dtype=np.float32)
        if self._announcing is not None:
            self._announcing.cancel()
        if self._unplayed is not None:
            self._unplayed = None
            await self.transport.clear()

    async def _announce(self, text: str) -> None:
        """Say a text that is not an assistant reply (greeting, unknown caller, error)."""
        tts = self.services.tts
        self._begin_reply(tts.sample_rate)
        pieces = tts.pieces(text)
        while (piece := await asyncio.to_thread(_next, pieces)) is not None:
            self._add_reply_audio(pcm16_to_float(piece))
        self._end_reply()

    async def _hang_up_when_played(self) -> None:
        """Let the last reply play out (the far end says when, or it must have after its
        length plus `hang_up_after_s`), then hang up."""
        queued_s = self._playout.queued_s
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._played.wait(), queued_s + self.settings.hang_up_after_s)
        await self.transport.hang_up()


def _next(pieces: Iterator[bytes]) -> bytes | None:
    return next(pieces, None)
