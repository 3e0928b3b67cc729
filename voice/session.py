"""One spoken conversation: audio in; transcripts, replies and speech out; barge-in.

A `VoiceSession` knows nothing of WebSockets or telephones. A channel decodes its wire
format to 16 kHz float samples, calls `hear()`, `password()`, `text()` and `end_of_speech()`,
and carries what the session says, typed events (voice/events.py), through its
`VoiceOutput`. Each utterance becomes one `Assistant.turn()` of the session's conversation.

Latency is what the user feels between the end of their speech and the first sound of the
reply, so transcription starts as soon as the speaker pauses (`SpeechPaused`), and at that
pause the session asks whether the turn is over (voice/turn.py: the words so far, what the
dialogue waits for, the Smart Turn model): if so it answers at once, else it keeps
listening up to `voice.turn.max_silence_ms`. When the speaker goes on, the early
transcription is cancelled (one runs at a time per session, so a cancelled one that has
not begun costs nothing).

Nothing is transcribed before the turn is admitted: an utterance asks the channel's
`admit` (token still good, request limit) once, at its first pause, and a refused one is
never heard by whisper. At most `voice.max_waiting_turns` turns wait behind the one being
answered, and audio is taken at most at real time after a burst of `voice.audio_burst_s`,
so a client cannot make utterances faster than it could speak them.

Speech over the assistant's reply stops it (barge-in) once it has gone on without a pause
for `voice.turn.barge_in_ms` or, shorter, once its words are heard at a pause and are more
than a backchannel ("mm-hmm", "okay"): a listener's acknowledgement neither stops the reply
nor makes a turn. Barge-in stops the reply's speech, never its answer: a reply cut off
before its speech was ready is still sent as text.

A turn the cascade sends to the slow LLM stage is acknowledged at once ("One moment."),
so that the caller does not wait in silence; the stage's time budget (llm.time_budget_s)
bounds the wait, and the reply event's `source` names the stage that answered.
"""

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict

from banking.db import DATABASE_UNREACHABLE
from dialogue import Assistant, AssistantReply, Expectation, Factor
from dialogue.conversation import Awaiting
from dialogue.reply import bank_unreachable
from nlu.pipeline import stage_starting
from voice import events
from voice.answers import AnswerSettings, recognise
from voice.audio import PIPELINE_RATE
from voice.events import VoiceEvent
from voice.stt import SpeechToText, SttSettings, Transcript
from voice.tts import TextToSpeech, TtsSettings
from voice.turn import TurnJudge, TurnSettings, ends_in_name, is_backchannel, unfinished
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
TOO_MANY_WAITING = "Please wait for my answer before saying more: that was not heard."
# Said at once when a turn goes to the LLM stage (in voice.tts.prewarm: cached).
ACKNOWLEDGEMENT = "One moment."
SLOW_STAGES = frozenset({"llm"})


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
    max_waiting_turns: int
    audio_burst_s: float
    max_sockets_per_user: int
    answers: AnswerSettings
    vad: VadSettings
    turn: TurnSettings
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
    turn: TurnJudge | None  # None: voice.turn.enabled is off, a fixed hang-over ends turns
    warm: threading.Event = field(default_factory=threading.Event)
    # Told each spoken turn's stage timings (ms) once its reply is ready to be heard.
    listeners: list[Callable[[dict[str, int]], None]] = field(default_factory=list)
    # Open /ws/voice sockets per user in this process (voice.max_sockets_per_user).
    sockets: Counter[int] = field(default_factory=Counter)

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
    # Begun over the assistant's reply and not (yet) a barge-in: a backchannel makes no turn.
    over_reply: bool = False
    turn_cpu_ms: float | None = None  # what deciding the end of the turn cost


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
        settings = services.settings
        self._turn = settings.turn
        vad = settings.vad
        if services.turn is not None:  # the judge ends complete turns; this is the longest wait
            vad = vad.model_copy(update={"hangover_ms": self._turn.max_silence_ms})
        self._endpointer = Endpointer(SileroVad(services.vad_model), vad)
        self._inbox: asyncio.Queue[_Utterance | _Typed | _Password] = asyncio.Queue()
        # Turns taken and not yet answered: the one being answered and those waiting behind
        # it (counted here, as the worker may not have taken the first from the inbox yet).
        self._unanswered = 0
        self._early: tuple[int, asyncio.Task[Transcript]] | None = None
        self._admitted: bool | None = None  # the current utterance's; None: not asked yet
        self._transcribing = asyncio.Lock()
        self._audio_credit_s = settings.audio_burst_s
        self._audio_checked = time.monotonic()
        self._speaking: asyncio.Task[None] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._hints: list[str] = []
        self._awaiting: Awaiting | None = None  # what the last reply asked for
        self._utterances = 0  # utterances begun, so that a late decision knows its own
        self._over_reply = False  # the current utterance began over the reply
        self._judging: asyncio.Task[None] | None = None
        self._turn_cpu_ms: float | None = None
        # What the conversation's last reply waits for: bare answers are heard against it.
        self._expecting: Expectation | None = None

    async def start(self) -> None:
        assistant = self.services.assistant
        self._hints = await asyncio.to_thread(assistant.contact_names, self.user_id)
        self._worker = asyncio.create_task(self._work())
        await self.output.send(events.Ready(self.session_id, PIPELINE_RATE))

    async def close(self) -> None:
        tasks = (self._speaking, self._worker, self._judging, self._early and self._early[1])
        for task in tasks:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def hear(self, samples: np.ndarray) -> None:
        """Float samples at the pipeline's 16 kHz from the caller's microphone."""
        await self._at_real_time(samples.size / PIPELINE_RATE)
        await self._handle(self._endpointer.feed(samples))
        if self._over_reply and self._endpointer.voiced_run_ms >= self._turn.barge_in_ms:
            await self._confirm_barge_in()  # too long for a backchannel

    async def end_of_speech(self) -> None:
        await self._handle(self._endpointer.finish())

    async def password(self, password: str) -> None:
        """The answer to "confirm with your password" (or PIN, as the session's `factor`
        says): the prompt need not finish playing."""
        await self._barge_in()
        await self._enqueue(_Password(password))

    async def text(self, text: str) -> None:
        await self._barge_in()
        await self._enqueue(_Typed(text))

    async def _at_real_time(self, seconds: float) -> None:
        """Take `seconds` of audio no faster than it plays, after a burst (a token bucket
        of `voice.audio_burst_s`): the channel stops reading meanwhile."""
        now = time.monotonic()
        burst_s = self.services.settings.audio_burst_s
        credit = min(burst_s, self._audio_credit_s + now - self._audio_checked)
        self._audio_credit_s, self._audio_checked = credit - seconds, now
        if self._audio_credit_s < 0:
            await asyncio.sleep(-self._audio_credit_s)

    async def _handle(self, endpoints: list[EndpointEvent]) -> None:
        for event in endpoints:
            if isinstance(event, SpeechStarted):
                self._admitted = None
                self._utterances += 1
                self._turn_cpu_ms = None
                if self._replying() and self._turn.barge_in_ms > 0:
                    self._over_reply = True  # a backchannel, or a barge-in: not known yet
                else:
                    await self._confirm_barge_in()
            elif isinstance(event, SpeechPaused):
                self._drop_early()  # the speaker went on: that transcript is stale
                if await self._admit_utterance():
                    transcribing = asyncio.ensure_future(self._transcribe(event.audio))
                    self._early = (event.audio.size, transcribing)
                    if self._judging is not None:
                        self._judging.cancel()
                    self._judging = asyncio.create_task(self._judge(event, transcribing))
            elif isinstance(event, UtteranceEnded):
                admitted = await self._admit_utterance()
                self._admitted = None
                early = self._early_transcript_of(event.audio)
                if admitted:
                    utterance = _Utterance(
                        event.audio, event.silence_ms, time.perf_counter(), early, self._over_reply
                    )
                    utterance.turn_cpu_ms = self._turn_cpu_ms
                    await self._enqueue(utterance)
                self._over_reply = False
            else:  # too short to be speech
                self._drop_early()
                self._over_reply = False

    async def _admit_utterance(self) -> bool:
        """Whether the utterance being heard may be a turn: asked once per utterance, before
        any transcription; a refusal is said once."""
        if self._admitted is None:
            refusal = await self.admit()
            self._admitted = refusal is None
            if refusal:
                await self.output.send(events.Error(refusal))
        return self._admitted

    async def _enqueue(self, item: "_Utterance | _Typed | _Password") -> None:
        if self._unanswered > self.services.settings.max_waiting_turns:
            if isinstance(item, _Utterance) and item.early is not None:
                item.early.cancel()
            await self.output.send(events.Error(TOO_MANY_WAITING))
            return
        self._unanswered += 1
        self._inbox.put_nowait(item)

    def _drop_early(self) -> None:
        early, self._early = self._early, None
        if early is not None:
            early[1].cancel()

    async def _judge(self, pause: SpeechPaused, transcribing: "asyncio.Task[Transcript]") -> None:
        """At a pause: a barge-in if the words are more than a backchannel; the end of the
        turn now if it is complete, else after `max_silence_ms` of silence at most."""
        utterance = self._utterances
        judge = self.services.turn
        try:
            transcript = await asyncio.shield(transcribing)
            interrupting = self._over_reply and utterance == self._utterances
            if interrupting and not is_backchannel(transcript.text, self._awaiting):
                await self._confirm_barge_in()
            if judge is None:
                return  # the endpointer's fixed hang-over ends the turn
            complete = judge.by_words(transcript.text, self._awaiting)
            if complete is not False and ends_in_name(transcript.text, self._hints):
                # Prompted with the contact names, whisper may end "send 500 to …" with
                # one of them by itself: heard without a prompt, such words are unfinished.
                # (Only that is asked of them: unprompted, whisper may mishear the name.)
                unhinted = await self._transcribe(pause.audio, hinted=False)
                if unfinished(unhinted.text, self._awaiting):
                    complete = False
            if complete is None:
                # Only now: beside whisper on two cores the model would slow the transcript
                # that decides most turns by their words.
                verdict = await asyncio.to_thread(judge.by_model, pause.audio)
                complete = verdict.complete
                if utterance == self._utterances:
                    self._turn_cpu_ms = verdict.cpu_ms
                log.debug("end of turn by the model: %s", verdict)
            settle_ms = judge.settle_ms(complete, self._awaiting)
            ended = self._endpointer.end_pause(pause.number, settle_ms)
            if not ended:
                # The rest of the silence is counted in the audio heard, so audio that comes
                # late is heard before the turn ends; if the stream stops (a client that
                # sends nothing after its words), the clock ends the turn instead.
                await asyncio.sleep(settle_ms / 1000)
                ended = self._endpointer.end_pause(pause.number)
            await self._handle(ended)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("end-of-turn decision failed (user %s)", self.user_id)

    async def _confirm_barge_in(self) -> None:
        self._over_reply = False
        await self.output.send(events.SpeechStart())  # the client stops playing
        await self._barge_in()

    def _replying(self) -> bool:
        return self._speaking is not None and not self._speaking.done()

    def _early_transcript_of(self, audio: np.ndarray) -> "asyncio.Task[Transcript] | None":
        """The early transcription if it heard exactly this audio (nobody spoke since);
        another one is cancelled."""
        early, self._early = self._early, None
        if early is not None and early[0] == audio.size:
            return early[1]
        if early is not None:
            early[1].cancel()
        return None

    async def _transcribe(self, audio: np.ndarray, hinted: bool = True) -> Transcript:
        """One transcription at a time per session: one cancelled while it waits never runs;
        whisper cannot be stopped mid-clip, so the next waits for one cancelled meanwhile.
        `hinted`: the decoder is prompted with the vocabulary and the user's contact names
        (voice/stt.py); unhinted, with nothing."""
        hints = self._hints if hinted else None
        async with self._transcribing:
            work = asyncio.ensure_future(
                asyncio.to_thread(self.services.stt.transcribe, self._padded(audio), hints)
            )
            try:
                return await asyncio.shield(work)
            finally:
                if not work.done():
                    await asyncio.wait([work])

    def _padded(self, audio: np.ndarray) -> np.ndarray:
        if any(pad.size for pad in self._pads):
            return np.concatenate([self._pads[0], audio, self._pads[1]])
        return audio

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
                if isinstance(item, _Utterance) and item.early is not None:
                    item.early.cancel()
                raise
            except Exception:
                log.exception("voice turn failed (user %s)", self.user_id)
                await self.output.send(events.Error("Sorry, something went wrong with that turn."))
            finally:
                self._unanswered -= 1

    async def _utterance(self, utterance: _Utterance) -> None:
        transcript = await (utterance.early or self._transcribe(utterance.audio))
        timings = {
            "endpoint_ms": utterance.silence_ms,
            "stt_ms": _ms_since(utterance.ended_at),
            "stt_compute_ms": round(transcript.wall_ms),
        }
        if utterance.turn_cpu_ms is not None:
            timings["turn_cpu_ms"] = round(utterance.turn_cpu_ms)
        if utterance.over_reply and is_backchannel(transcript.text, self._awaiting):
            log.info("voice: a backchannel over the reply, no turn")
            return
        if not transcript.text:  # a cough, a door, noise: no turn
            log.info("voice: no words in %.2f s of audio", transcript.audio_s)
            await self.output.send(events.NoSpeech())
            return
        services = self.services
        heard = await asyncio.to_thread(
            recognise,
            transcript.text,
            self._padded(utterance.audio),
            self._expecting,
            services.stt.rank,
            services.settings.answers,
        )
        if heard.how != "open":
            log.info(
                "voice: heard %r as the answer %r (%s)", transcript.text, heard.text, heard.how
            )
        await self._answer(
            heard.text,
            None,
            timings,
            utterance.ended_at,
            heard=True,
            doubtful=heard.how == "doubtful",
            admitted=True,
        )

    async def _answer(
        self,
        text: str,
        password: str | None,
        timings: dict[str, int],
        since: float,
        heard: bool = False,
        admitted: bool = False,
        doubtful: bool = False,
    ) -> None:
        refusal = None if admitted else await self.admit()
        if refusal:
            await self.output.send(events.Error(refusal))
            return
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        acknowledged: list[asyncio.Task[None]] = []

        def acknowledge(stage: str) -> None:  # in the assistant's thread
            if stage in SLOW_STAGES and not acknowledged:
                loop.call_soon_threadsafe(lambda: acknowledged.append(self._acknowledge()))

        asking = stage_starting.set(acknowledge)  # the worker thread gets a copy of it
        try:
            reply: AssistantReply = await asyncio.to_thread(
                self.services.assistant.turn,
                self.user_id,
                text,
                password,
                self.session_id,
                channel=self.channel,
                factor=self.factor,
                doubtful=doubtful,
            )
        except DATABASE_UNREACHABLE:  # said aloud; the call or session goes on
            reply = bank_unreachable()
        finally:
            stage_starting.reset(asking)
        timings["assistant_ms"] = _ms_since(started)
        self._awaiting = (reply.data or {}).get("awaiting")
        self._expecting = (
            await asyncio.to_thread(
                self.services.assistant.expectation, self.user_id, self._awaiting
            )
            if self._awaiting
            else None
        )
        if heard:
            shown = MASKED if reply.message_was_secret else text
            await self.output.send(events.Transcript(shown))
        for saying in acknowledged:  # short: heard to its end unless the caller talks over it
            await asyncio.wait([saying])
        await self._barge_in()
        self._speaking = asyncio.create_task(self._speak(reply, timings, since))
        await asyncio.wait([self._speaking])  # ends early on barge-in

    def _acknowledge(self) -> "asyncio.Task[None]":
        """Say "One moment." while the turn waits for a slow stage."""
        self._speaking = asyncio.create_task(self._say(ACKNOWLEDGEMENT))
        return self._speaking

    async def _say(self, text: str) -> None:
        """Speech that is not a reply (no reply event before it)."""
        pieces = iter(self.services.tts.pieces(text))
        await self._play(await _next_piece(pieces), pieces)

    async def _speak(self, reply: AssistantReply, timings: dict[str, int], since: float) -> None:
        """The reply event once its first piece of speech is ready, then the audio, piece
        by piece as the channel takes it (its playout paces it to the listener)."""
        tts = self.services.tts
        pieces = iter(tts.pieces(reply.reply))
        synthesis_started = time.perf_counter()
        try:
            first = await _next_piece(pieces)
        except asyncio.CancelledError:
            # Cut off before its speech was ready (the user spoke or typed again): the turn
            # happened, a transfer it reports was made, so its answer is still given as text.
            await asyncio.shield(_quietly(self._send_reply(reply, timings, since)))
            raise
        timings["tts_first_ms"] = _ms_since(synthesis_started)
        await self._send_reply(reply, timings, since)
        for listener in self.services.listeners:
            listener(timings)
        await self._play(first, pieces)

    async def _send_reply(
        self, reply: AssistantReply, timings: dict[str, int], since: float
    ) -> None:
        timings["total_ms"] = timings.get("endpoint_ms", 0) + _ms_since(since)
        awaiting = (reply.data or {}).get("awaiting")  # Assistant.turn() always says
        await self.output.send(events.Reply(reply, self.session_id, dict(timings), awaiting))
        log.info("voice turn user=%s %s", self.user_id, _format_timings(timings))

    async def _play(self, first: bytes | None, pieces: Iterator[bytes]) -> None:
        """Speech, piece by piece as the channel takes it (its playout paces it)."""
        await self.output.send(events.AudioStart(self.services.tts.sample_rate))
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
