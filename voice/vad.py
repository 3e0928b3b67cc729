"""Endpointing: where an utterance starts and ends in a stream of 16 kHz audio.

Silero VAD (ONNX) scores every 32 ms window. `Endpointer` turns the scores into events:
speech started (a client stops its playback: barge-in), a pause long enough to start
transcribing early, and the finished utterance once the silence lasts the hang-over.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from nlu.onnx_session import cpu_session
from voice.audio import PIPELINE_RATE

WINDOW = 512  # samples per VAD window at 16 kHz: 32 ms
CONTEXT = 64  # samples of the previous window the model sees before each window
WINDOW_MS = WINDOW * 1000 // PIPELINE_RATE


class VadSettings(BaseModel):
    """Values come from config.yaml (voice.vad), which documents each key."""

    model_config = ConfigDict(extra="forbid")

    threshold: float
    start_ms: int
    pre_roll_ms: int
    hangover_ms: int
    early_transcribe_ms: int
    min_speech_ms: int
    max_utterance_s: float


class SileroVad:
    """Speech probability of consecutive 512-sample windows; keeps the model's state."""

    def __init__(self, model_path: Path) -> None:
        self._session = cpu_session(model_path)
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)

    def probability(self, window: np.ndarray) -> float:
        model_input = np.concatenate([self._context, window]).reshape(1, -1)
        probs, self._h, self._c = self._session.run(
            None, {"input": model_input, "h": self._h, "c": self._c}
        )
        self._context = window[-CONTEXT:]
        return float(np.asarray(probs).reshape(-1)[0])


@dataclass(frozen=True)
class SpeechStarted:
    """Speech began (confirmed by `start_ms` of it): a reply being played should stop."""


@dataclass(frozen=True)
class SpeechPaused:
    """Silence for `early_transcribe_ms`: `audio` is the utterance if the speaker is done.

    `number` counts the pauses of the endpointer: `Endpointer.end_pause(number)` ends the
    utterance there, if the speaker has not gone on since."""

    audio: np.ndarray
    number: int = 0


@dataclass(frozen=True)
class UtteranceEnded:
    """The finished utterance (pre-roll included, trailing silence cut to the pause length).

    `silence_ms` is how long the speaker had been quiet when the end was decided.
    """

    audio: np.ndarray
    silence_ms: int


@dataclass(frozen=True)
class SpeechDiscarded:
    """What sounded like speech at first was too short to be an utterance (a cough, a click)."""


EndpointEvent = SpeechStarted | SpeechPaused | UtteranceEnded | SpeechDiscarded


class Endpointer:
    """Feed audio of any length; get the endpointing events it completes."""

    def __init__(self, vad: SileroVad, settings: VadSettings) -> None:
        self.vad = vad
        self.settings = settings
        self._pending = np.zeros(0, dtype=np.float32)
        self._pauses = 0
        self._pre_roll_windows = max(1, settings.pre_roll_ms // WINDOW_MS)
        self._reset()

    @property
    def in_speech(self) -> bool:
        return self._speaking

    @property
    def voiced_run_ms(self) -> int:
        """Speech heard in the current utterance since its last pause (0 between
        utterances): how long the speaker has gone on without stopping."""
        return self._run_ms if self._speaking else 0

    def _reset(self) -> None:
        self._speaking = False
        self._windows: list[np.ndarray] = []  # pre-roll while idle, the utterance while speaking
        self._voiced_run = 0  # consecutive voiced windows while idle
        self._voiced_ms = 0
        self._run_ms = 0  # voiced since the last pause
        self._silence_ms = 0
        self._last_voiced = 0  # windows up to and including the last voiced one
        self._paused_sent = False
        self._end_at_silence_ms: int | None = None  # set by end_pause

    def feed(self, samples: np.ndarray) -> list[EndpointEvent]:
        self._pending = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32)])
        events: list[EndpointEvent] = []
        while self._pending.size >= WINDOW:
            window, self._pending = self._pending[:WINDOW], self._pending[WINDOW:]
            events.extend(self._step(window, self.vad.probability(window)))
        return events

    def finish(self) -> list[EndpointEvent]:
        """The speaker is done (end of a file, push-to-talk released): end the utterance now."""
        if not self._speaking:
            self._reset()
            return []
        return [self._end()]

    def end_pause(self, number: int, at_silence_ms: int = 0) -> list[EndpointEvent]:
        """End the utterance at pause `number` (its turn is complete) once the silence has
        lasted `at_silence_ms` of audio (now, if it has), unless the speaker spoke again
        after it or it has already ended. Counted in audio, not on the clock: audio that
        comes late (a busy machine, a slow network) is heard before the turn ends."""
        if not (self._speaking and self._paused_sent and self._pauses == number):
            return []
        if self._silence_ms < at_silence_ms:
            self._end_at_silence_ms = at_silence_ms
            return []
        return [self._end()]

    def _step(self, window: np.ndarray, probability: float) -> list[EndpointEvent]:
        settings = self.settings
        voiced = probability >= settings.threshold
        self._windows.append(window)
        if not self._speaking:
            self._voiced_run = self._voiced_run + 1 if voiced else 0
            keep = self._pre_roll_windows + self._voiced_run
            self._windows = self._windows[-keep:]
            if self._voiced_run * WINDOW_MS < settings.start_ms:
                return []
            self._speaking = True
            self._voiced_ms = self._run_ms = self._voiced_run * WINDOW_MS
            self._last_voiced = len(self._windows)
            return [SpeechStarted()]
        # Below threshold - 0.15 counts as silence; in between keeps the state (hysteresis).
        if voiced:
            self._voiced_ms += WINDOW_MS
            self._run_ms = 0 if self._paused_sent else self._run_ms
            self._run_ms += WINDOW_MS
            self._silence_ms = 0
            self._last_voiced = len(self._windows)
            self._paused_sent = False
            self._end_at_silence_ms = None  # the speaker went on: that pause is not the end
        elif probability < settings.threshold - 0.15:
            self._silence_ms += WINDOW_MS
        if len(self._windows) * WINDOW_MS >= settings.max_utterance_s * 1000:
            return [self._end()]
        end_at_ms = settings.hangover_ms
        if self._end_at_silence_ms is not None:
            end_at_ms = min(end_at_ms, self._end_at_silence_ms)
        if self._silence_ms >= end_at_ms:
            return [self._end()]
        if self._silence_ms >= settings.early_transcribe_ms and not self._paused_sent:
            self._paused_sent = True
            self._pauses += 1
            return [SpeechPaused(self._utterance_audio(), self._pauses)]
        return []

    def _utterance_audio(self) -> np.ndarray:
        """Up to the last voiced window plus `early_transcribe_ms` of what followed it.

        So the audio of a pause and of the end it turns into are the same samples, and an
        early transcript can stand.
        """
        tail = self.settings.early_transcribe_ms // WINDOW_MS
        return np.concatenate(self._windows[: self._last_voiced + tail])

    def _end(self) -> EndpointEvent:
        audio, silence_ms = self._utterance_audio(), self._silence_ms
        long_enough = self._voiced_ms >= self.settings.min_speech_ms
        self._reset()
        self.vad.reset()
        return UtteranceEnded(audio, silence_ms) if long_enough else SpeechDiscarded()
