"""One spoken conversation: audio in; transcripts, replies and speech out; barge-in.

A `VoiceSession` knows nothing of WebSockets or telephones. A channel decodes its wire
format to 16 kHz float samples, calls `hear()`, `password()`, `text()` and `end_of_speech()`,
and carries what the session says, typed events (voice/events.py), through its
`VoiceOutput`. Each utterance becomes one `Assistant.turn()` of the session's conversation.

Latency is what the user feels between the end of their speech and the first sound of the
reply, so transcription starts as soon as the speaker pauses (`SpeechPaused`), before the
silence hang-over has decided the utterance is over; when the speaker goes on, that early
transcript is dropped.
"""

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict

from dialogue import Assistant, AssistantReply, Factor
from voice import events
from voice.audio import PIPELINE_RATE
from voice.events import VoiceEvent
from voice.stt import SpeechToText, SttSettings, Transcript
from voice.tts import TextToSpeech, TtsSettings
from voice.vad import (
    Endpointer,
    EndpointEvent,
    SileroVad,
    SpeechPaused,
    SpeechStarted,
    UtteranceEnded,
    VadSettings,
)

log = logging.getLogger(__name__)

MASKED = "••••••"


class VoiceOutput(Protocol):
    """Where a session's events go: the channel puts them on its wire, in order."""

    async def send(self, event: VoiceEvent) -> None:
        """Carry `event`. For an `AudioChunk`, return once at most `voice.playback_lead_ms`
        of the reply is queued and not yet heard (the channel's playout paces it), so that
        speech is synthesised just ahead of the listener; an `AudioEnd` that says
        interrupted drops what is queued."""


# Asked before each turn: why the channel may not take one now (the caller's token ended,
# too many requests), or None.
Admission = Callable[[], Awaitable[str | None]]


async def admit_all() -> str | None:
    return None


class VoiceSettings(BaseModel):
    """Values come from config.yaml (voice), which documents each key."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool
    stt_model: str
    tts_voice: str
    audio_chunk_ms: int
    playback_lead_ms: int
    vad: VadSettings
    stt: SttSettings
    tts: TtsSettings


@dataclass
class VoiceServices:
    """The loaded models and the assistant, shared by every session of the process."""

    assistant: Assistant
    stt: SpeechToText
    tts: TextToSpeech
    vad_model: Path
    settings: VoiceSettings
    warm: threading.Event = field(default_factory=threading.Event)
    # Told each spoken turn's stage timings (ms) once its reply is ready to be heard.
    listeners: list[Callable[[dict[str, int]], None]] = field(default_factory=list)

    def warm_up(self) -> None:
        """Run each model once (and fill the speech cache) so the first caller does not wait."""
        self.stt.warm_up()
        self.tts.warm_up()
        self.warm.set()

    def status(self) -> str:
        return "ready" if self.warm.is_set() else "warming_up"


@dataclass
class _Utterance:
    audio: np.ndarray
    silence_ms: int
    ended_at: float
    early: "asyncio.Task[Transcript] | None"


@dataclass
class _Typed:
    text: str


@dataclass
class _Password:
    password: str


class VoiceSession:
    def __init__(
        self,
        services: VoiceServices,
        user_id: int,
        output: VoiceOutput,
        session_id: str | None = None,
        admit: Admission = admit_all,
        *,
        channel: str = "assistant",
        factor: Factor = "password",
        stt_pad_s: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        """`channel` names the channel in the audit trail and logs; `factor` is what
        `password()` is given: the password, or on the phone the keypad PIN; `stt_pad_s`
        is silence put before and after each utterance for the speech-to-text (seconds)."""
        self.services = services
        self.user_id = user_id
        self.output = output
        self.admit = admit
        self.channel = channel
        self.factor = factor
        self._pads = [np.zeros(round(s * PIPELINE_RATE), dtype=np.float32) for s in stt_pad_s]
        self.session_id = session_id or f"voice-{uuid.uuid4().hex}"
        self._endpointer = Endpointer(SileroVad(services.vad_model), services.settings.vad)
        self._inbox: asyncio.Queue[_Utterance | _Typed | _Password] = asyncio.Queue()
        self._early: tuple[int, asyncio.Task[Transcript]] | None = None
        self._speaking: asyncio.Task[None] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._hints: list[str] = []

    async def start(self) -> None:
        assistant = self.services.assistant
        self._hints = await asyncio.to_thread(assistant.contact_names, self.user_id)
        self._worker = asyncio.create_task(self._work())
        await self.output.send(events.Ready(self.session_id, PIPELINE_RATE))

    async def close(self) -> None:
        for task in (self._speaking, self._worker, self._early and self._early[1]):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def hear(self, samples: np.ndarray) -> None:
        """Float samples at the pipeline's 16 kHz from the caller's microphone."""
        await self._handle(self._endpointer.feed(samples))

    async def end_of_speech(self) -> None:
        await self._handle(self._endpointer.finish())

    async def password(self, password: str) -> None:
        """The answer to "confirm with your password" (or PIN, as the session's `factor`
        says): the prompt need not finish playing."""
        await self._barge_in()
        await self._inbox.put(_Password(password))

    async def text(self, text: str) -> None:
        await self._barge_in()
        await self._inbox.put(_Typed(text))

    async def _handle(self, endpoints: list[EndpointEvent]) -> None:
        for event in endpoints:
            if isinstance(event, SpeechStarted):
                await self.output.send(events.SpeechStart())  # the client stops playing
                await self._barge_in()
            elif isinstance(event, SpeechPaused):
                transcribing = self._transcribe(event.audio)
                self._early = (event.audio.size, asyncio.ensure_future(transcribing))
            elif isinstance(event, UtteranceEnded):
                early = self._early_transcript_of(event.audio)
                await self._inbox.put(
                    _Utterance(event.audio, event.silence_ms, time.perf_counter(), early)
                )
            else:  # too short to be speech
                self._early = None

    def _early_transcript_of(self, audio: np.ndarray) -> "asyncio.Task[Transcript] | None":
        """The early transcription if it heard exactly this audio (nobody spoke since)."""
        early, self._early = self._early, None
        return early[1] if early is not None and early[0] == audio.size else None

    async def _transcribe(self, audio: np.ndarray) -> Transcript:
        if any(pad.size for pad in self._pads):
            audio = np.concatenate([self._pads[0], audio, self._pads[1]])
        return await asyncio.to_thread(self.services.stt.transcribe, audio, self._hints)

    async def _barge_in(self) -> None:
        """The user talks over the reply: stop sending it (the client stops playing it)."""
        if self._speaking is not None and not self._speaking.done():
            self._speaking.cancel()
            await asyncio.wait([self._speaking])

    async def _work(self) -> None:
        while True:
            item = await self._inbox.get()
            try:
                if isinstance(item, _Utterance):
                    await self._utterance(item)
                elif isinstance(item, _Typed):
                    await self._answer(item.text, None, {}, time.perf_counter())
                else:
                    await self._answer("", item.password, {}, time.perf_counter())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("voice turn failed (user %s)", self.user_id)
                await self.output.send(events.Error("Sorry, something went wrong with that turn."))

    async def _utterance(self, utterance: _Utterance) -> None:
        transcript = await (utterance.early or self._transcribe(utterance.audio))
        timings = {
            "endpoint_ms": utterance.silence_ms,
            "stt_ms": _ms_since(utterance.ended_at),
            "stt_compute_ms": round(transcript.wall_ms),
        }
        if not transcript.text:  # a cough, a door, noise: no turn
            log.info("voice: no words in %.2f s of audio", transcript.audio_s)
            await self.output.send(events.NoSpeech())
            return
        await self._answer(transcript.text, None, timings, utterance.ended_at, heard=True)

    async def _answer(
        self,
        text: str,
        password: str | None,
        timings: dict[str, int],
        since: float,
        heard: bool = False,
    ) -> None:
        refusal = await self.admit()
        if refusal:
            await self.output.send(events.Error(refusal))
            return
        started = time.perf_counter()
        reply: AssistantReply = await asyncio.to_thread(
            self.services.assistant.turn,
            self.user_id,
            text,
            password,
            self.session_id,
            channel=self.channel,
            factor=self.factor,
        )
        timings["assistant_ms"] = _ms_since(started)
        if heard:
            shown = MASKED if reply.message_was_secret else text
            await self.output.send(events.Transcript(shown))
        await self._barge_in()
        self._speaking = asyncio.create_task(self._speak(reply, timings, since))
        await asyncio.wait([self._speaking])  # ends early on barge-in

    async def _speak(self, reply: AssistantReply, timings: dict[str, int], since: float) -> None:
        """The reply event once its first piece of speech is ready, then the audio, piece
        by piece as the channel takes it (its playout paces it to the listener)."""
        tts = self.services.tts
        pieces = iter(tts.pieces(reply.reply))
        synthesis_started = time.perf_counter()
        first = await _next_piece(pieces)
        timings["tts_first_ms"] = _ms_since(synthesis_started)
        timings["total_ms"] = timings.get("endpoint_ms", 0) + _ms_since(since)
        awaiting = (reply.data or {}).get("awaiting")  # Assistant.turn() always says
        await self.output.send(events.Reply(reply, self.session_id, dict(timings), awaiting))
        log.info("voice turn user=%s %s", self.user_id, _format_timings(timings))
        for listener in self.services.listeners:
            listener(timings)
        await self.output.send(events.AudioStart(tts.sample_rate))
        interrupted = True
        try:
            piece = first
            while piece is not None:
                await self.output.send(events.AudioChunk(piece))
                piece = await _next_piece(pieces)
            interrupted = False
        finally:
            await asyncio.shield(_quietly(self.output.send(events.AudioEnd(interrupted))))


async def _next_piece(pieces: Iterator[bytes]) -> bytes | None:
    return await asyncio.to_thread(next, pieces, None)


async def _quietly(sending: Awaitable[None]) -> None:
    """Send if the channel is still there; a closed channel has nobody left to tell."""
    with contextlib.suppress(Exception):
        await sending


def _ms_since(start: float) -> int:
    return round((time.perf_counter() - start) * 1000)


def _format_timings(timings: dict[str, int]) -> str:
    return " ".join(f"{name}={value}" for name, value in timings.items())
