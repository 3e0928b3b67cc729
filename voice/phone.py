"""One telephone call: a `VoiceSession` behind a phone line's 8 kHz audio and keypad.

A telephony transport (Twilio Media Streams in voice/twilio.py, Asterisk AudioSocket in
voice/audiosocket.py) decodes its wire format and calls the `PhoneCall`:

    call = PhoneCall(services, transport, caller="+15550100001", settings=settings)
    if await call.start():           # False: unknown number, told so; the call hangs up
        await call.hear_mulaw(b"...")    # or hear_pcm16(): 8 kHz audio, any length
        await call.dtmf("1")             # keypad digits, "*" and "#"
        call.played("reply-1")           # the far end played a reply out (Twilio's mark)
    await call.close()               # the far end hung up or the connection dropped

and implements `PhoneTransport` to carry what the call sends back: 20 ms frames of 8 kHz
audio, `clear` when the caller talks over a reply, `reply_sent` after each reply, and
`hang_up`.

Audio. Caller audio is decoded (μ-law or signed linear) and resampled once, 8 → 16 kHz,
by one stream resampler per call (`upsampler`: libsoxr, or linear interpolation, which
whisper heard better on recorded speech but worse on espeak's: bench/bench_phone.py),
for the VAD and the speech-to-text; each
utterance gets `stt_pad_s` of silence around it before whisper hears it. Reply audio is
resampled once, from the TTS rate straight to 8 kHz, by a stream resampler (no clicks at
chunk joins), cut into exact 160-sample frames (the last one padded with silence) and
sent at real time, at most `playback_lead_ms` ahead, so that a barge-in stops the reply
where the caller is.

Who is calling. The caller's number must be registered on a user (banking/phones.py);
an unknown number hears that it is not registered, and the call ends.

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
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict

from dialogue import reply as say
from voice.audio import LinearUpsampler, StreamResampler, mulaw_decode, pcm16_to_float
from voice.session import MASKED, Admission, VoiceServices, VoiceSession, admit_all

log = logging.getLogger(__name__)

PHONE_RATE = 8_000
STT_RATE = 16_000
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
    """One call: its own session, VAD, resamplers, playback and keypad state."""

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
    ) -> None:
        """`caller` is the calling number as the network gives it (E.164 expected);
        `channel` names the protocol in the audit trail and logs ("twilio", ...);
        `admit` is asked before each turn (e.g. the user's request limit)."""
        self.services = services
        self.transport = transport
        self.caller = caller
        self.settings = settings
        self.channel = channel
        self.call_id = call_id or uuid.uuid4().hex
        self.admit = admit
        self.user_id: int | None = None
        self.session: VoiceSession | None = None
        self._inbound = (
            LinearUpsampler()
            if settings.upsampler == "linear"
            else StreamResampler(PHONE_RATE, STT_RATE)
        )
        self._lead_s = settings.playback_lead_ms / 1000
        # Reply playback: 8 kHz samples waiting for the player, and where they come from.
        self._out = np.zeros(0, dtype=np.float32)
        self._outbound: StreamResampler | None = None  # None: no reply is being received
        self._reply_complete = False  # all of the reply's audio is in _out
        self._replies = 0
        self._reply_name = ""
        self._unplayed: str | None = None  # a reply the far end may still be playing
        self._played = asyncio.Event()
        self._generation = 0  # +1 on each barge-in: a frame of an older one is dropped
        self._wake = asyncio.Event()
        self._clock: float | None = None
        self._player: asyncio.Task[None] | None = None
        self._announcing: asyncio.Task[None] | None = None
        # Keypad.
        self._awaiting_pin = False
        self._digits = ""

    # -- the transport's calls -----------------------------------------------------------

    async def start(self) -> bool:
        """Identify the caller; greet a registered one (True), or tell an unknown number
        so and hang up (False)."""
        self._player = asyncio.create_task(self._play())
        person = await asyncio.to_thread(self.services.assistant.caller, self.caller)
        if person is None:
            log.info("call %s: the calling number is not registered", self.call_id)
            await self._announce(say.UNKNOWN_CALLER)
            await self._hang_up_when_played()
            return False
        self.user_id = person.id
        log.info("call %s: user %s on %s", self.call_id, self.user_id, self.channel)
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
        self._announcing = asyncio.create_task(
            self._announce(say.phone_greeting(person.first_name))
        )
        return True

    async def hear_mulaw(self, data: bytes) -> None:
        """G.711 μ-law caller audio at 8 kHz (Twilio's audio/x-mulaw)."""
        await self._hear(mulaw_decode(data))

    async def hear_pcm16(self, data: bytes) -> None:
        """Signed linear 16-bit little-endian caller audio at 8 kHz (AudioSocket's slin);
        raises AudioFormatError for an odd byte count."""
        await self._hear(pcm16_to_float(data))

    async def dtmf(self, key: str) -> None:
        """A key pressed on the caller's keypad: "0"-"9", "*", "#" (or "A"-"D")."""
        if key not in KEYS:
            log.warning("call %s: ignored an unknown keypad key", self.call_id)
            return
        if self.session is None or not self._awaiting_pin:
            return  # keys are only a PIN; the digits are not logged: they may be one
        if key == "*":
            self._digits = ""
        elif key == "#":
            pin, self._digits = self._digits, ""
            if pin:
                self._awaiting_pin = False
                log.info("call %s: PIN entered (%s)", self.call_id, MASKED)
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
        for task in (self._announcing, self._player):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self.session is not None:
            await self.session.close()

    # -- VoiceOutput: what the session says ----------------------------------------------

    async def event(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "speech_start":
            await self._interrupt()
        elif kind == "reply":
            self._awaiting_pin = (message.get("data") or {}).get("awaiting") == "password"
            self._digits = ""
        elif kind == "audio_start":
            self._begin_reply(int(message["sample_rate"]))
        elif kind == "audio_end":
            if message.get("interrupted"):
                await self._interrupt()
            else:
                self._end_reply()
        elif kind == "error":
            await self._announce(str(message["message"]))

    async def audio(self, pcm16: bytes) -> None:
        self._add_reply_audio(pcm16_to_float(pcm16))

    # -- inside --------------------------------------------------------------------------

    async def _hear(self, samples: np.ndarray) -> None:
        if self.session is not None:
            await self.session.hear(self._inbound.push(samples))

    def _begin_reply(self, sample_rate: int) -> None:
        self._outbound = StreamResampler(sample_rate, PHONE_RATE)
        self._reply_complete = False
        self._replies += 1
        self._reply_name = self._unplayed = f"reply-{self._replies}"
        self._played.clear()

    def _add_reply_audio(self, samples: np.ndarray) -> None:
        if self._outbound is None:
            return  # a reply the caller interrupted: its remaining audio is dropped
        self._out = np.concatenate([self._out, self._outbound.push(samples)])
        self._wake.set()

    def _end_reply(self) -> None:
        if self._outbound is None:
            return
        self._out = np.concatenate(
            [self._out, self._outbound.push(np.zeros(0, dtype=np.float32), last=True)]
        )
        self._outbound = None
        self._out = np.pad(self._out, (0, -self._out.size % FRAME_SAMPLES))
        self._reply_complete = True
        self._wake.set()

    async def _interrupt(self) -> None:
        """Barge-in: drop the reply's remaining audio, and the far end's if it holds any."""
        self._generation += 1
        self._outbound, self._reply_complete = None, False
        self._out = np.zeros(0, dtype=np.float32)
        if self._announcing is not None:
            self._announcing.cancel()
        if self._unplayed is not None:
            self._unplayed = None
            await self.transport.clear()

    async def _play(self) -> None:
        """Send queued reply audio frame by frame at real time, `lead` ahead at most."""
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._out.size >= FRAME_SAMPLES:
                generation = self._generation
                frame, self._out = self._out[:FRAME_SAMPLES], self._out[FRAME_SAMPLES:]
                now = loop.time()
                if self._clock is None or self._clock < now:
                    self._clock = now  # nothing was playing (or audio came late): start now
                if self._clock - now > self._lead_s:
                    await asyncio.sleep(self._clock - now - self._lead_s)
                    if generation != self._generation:
                        break  # barged in while waiting: this frame is not wanted
                await self.transport.send_frame(frame)
                self._clock += FRAME_S
            if self._reply_complete and self._out.size == 0:
                self._reply_complete = False
                await self.transport.reply_sent(self._reply_name)

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
        queued_s = self._out.size / PHONE_RATE
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._played.wait(), queued_s + self.settings.hang_up_after_s)
        await self.transport.hang_up()


def _next(pieces: Iterator[bytes]) -> bytes | None:
    return next(pieces, None)
