"""Endpointing with the real Silero VAD model on spoken WAV files."""

from pathlib import Path

import numpy as np
import pytest

from nlu.model_files import require
from tests.voice.spoken import cached_noise_wav, cached_spoken_wav
from voice.audio import PIPELINE_RATE as RATE
from voice.audio import read_wav
from voice.vad import (
    WINDOW_MS,
    Endpointer,
    SileroVad,
    SpeechDiscarded,
    SpeechPaused,
    SpeechStarted,
    UtteranceEnded,
    VadSettings,
)

SETTINGS = VadSettings(
    threshold=0.5,
    start_ms=96,
    pre_roll_ms=300,
    hangover_ms=500,
    early_transcribe_ms=200,
    min_speech_ms=250,
    max_utterance_s=15,
)


@pytest.fixture(scope="module")
def vad_model() -> Path:
    return require("silero-vad-v6")


def endpointer(model: Path, **changes: float) -> Endpointer:
    return Endpointer(SileroVad(model), SETTINGS.model_copy(update=changes))


def speech(text: str = "check my balance") -> np.ndarray:
    return read_wav(cached_spoken_wav(text, "en-us", 150, 50))[0]


def trimmed(text: str) -> np.ndarray:
    """The speech from its first to its last audible sample, without any silence around."""
    said = speech(text)
    audible = np.nonzero(np.abs(said) > 0.01)[0]
    return said[audible[0] : audible[-1] + 1]


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), dtype=np.float32)


def feed_in_frames(ep: Endpointer, samples: np.ndarray, frame: int = 1600) -> list[object]:
    """Like a client: 100 ms frames, which do not line up with the 32 ms VAD windows."""
    return [
        event
        for start in range(0, samples.size, frame)
        for event in ep.feed(samples[start : start + frame])
    ]


def test_one_command_is_one_utterance_with_its_speech(vad_model: Path) -> None:
    said = speech()
    events = feed_in_frames(endpointer(vad_model), np.concatenate([silence(1), said, silence(1)]))
    kinds = [type(event) for event in events]
    assert kinds == [SpeechStarted, SpeechPaused, UtteranceEnded]
    paused, ended = events[1], events[2]
    assert np.array_equal(paused.audio, ended.audio)  # an early transcript stands
    assert ended.silence_ms >= SETTINGS.hangover_ms
    # The utterance holds the speech (espeak's WAV is padded with 0.3 s + 0.5 s of silence).
    assert said.size / RATE - 0.8 <= ended.audio.size / RATE <= said.size / RATE + 0.5


def test_the_start_of_speech_is_kept_by_the_pre_roll(vad_model: Path) -> None:
    """Speech is confirmed only after start_ms, but the utterance begins before its first sound."""
    said = trimmed("check my balance")
    events = feed_in_frames(endpointer(vad_model), np.concatenate([silence(1), said, silence(1)]))
    utterance = next(e for e in events if isinstance(e, UtteranceEnded)).audio
    audible = np.nonzero(np.abs(utterance) > 0.01)[0]
    assert audible[0] >= 0.15 * RATE  # silence from before the speech leads the utterance
    assert audible.size == np.count_nonzero(np.abs(said) > 0.01)  # not one sound lost


def test_silence_and_noise_are_not_speech(vad_model: Path) -> None:
    ep = endpointer(vad_model)
    white = read_wav(cached_noise_wav("white", 2.0, 0.1))[0]
    assert feed_in_frames(ep, np.concatenate([silence(2), white, silence(1)])) == []
    assert ep.finish() == []


def test_a_short_pause_does_not_split_the_utterance(vad_model: Path) -> None:
    first, second = trimmed("send money"), trimmed("to ravi")
    audio = np.concatenate([silence(0.5), first, silence(0.3), second, silence(1)])
    events = feed_in_frames(endpointer(vad_model), audio)
    assert [type(e) for e in events].count(UtteranceEnded) == 1


def test_a_long_hangover_waits_and_a_short_one_cuts(vad_model: Path) -> None:
    pause = silence(1.0)
    audio = [silence(0.5), trimmed("send money"), pause, trimmed("to ravi"), silence(2)]
    audio = np.concatenate(audio)
    patient = feed_in_frames(endpointer(vad_model, hangover_ms=1500), audio)
    hasty = feed_in_frames(endpointer(vad_model), audio)
    assert [type(e) for e in patient].count(UtteranceEnded) == 1
    assert [type(e) for e in hasty].count(UtteranceEnded) == 2


def test_an_utterance_is_cut_at_the_maximum_length(vad_model: Path) -> None:
    long_talk = np.concatenate([speech("send five hundred rupees to ravi")] * 4)
    events = feed_in_frames(endpointer(vad_model, max_utterance_s=2.0), long_talk)
    utterances = [e for e in events if isinstance(e, UtteranceEnded)]
    assert utterances and all(u.audio.size <= 2.0 * RATE + 512 for u in utterances)


def test_finish_ends_the_utterance_without_waiting(vad_model: Path) -> None:
    ep = endpointer(vad_model)
    said = speech()[: -int(0.5 * RATE)]  # cut the trailing silence off
    events = feed_in_frames(ep, np.concatenate([silence(0.5), said]))
    assert SpeechStarted() in events and not any(isinstance(e, UtteranceEnded) for e in events)
    assert [type(e) for e in ep.finish()] == [UtteranceEnded]
    assert ep.finish() == []


def test_a_click_is_discarded(vad_model: Path) -> None:
    ep = endpointer(vad_model, min_speech_ms=2000)
    events = feed_in_frames(ep, np.concatenate([silence(0.5), speech("yes"), silence(1)]))
    assert SpeechDiscarded() in events and not any(isinstance(e, UtteranceEnded) for e in events)


def test_windows_are_32_ms() -> None:
    assert WINDOW_MS == 32


def test_a_pause_ends_the_utterance_once_its_silence_is_heard_not_before(vad_model: Path) -> None:
    """The end of a turn is counted in audio: however late the audio comes, the utterance
    ends only once the silence asked for has been heard, and not if the speaker goes on."""
    ep = endpointer(vad_model, hangover_ms=2000)
    events = feed_in_frames(ep, np.concatenate([silence(0.5), trimmed("send five hundred")]))
    events += feed_in_frames(ep, silence(0.3))
    paused = events[-1]
    assert isinstance(paused, SpeechPaused)
    assert ep.end_pause(paused.number, at_silence_ms=600) == []  # 300 ms heard so far
    ended = feed_in_frames(ep, silence(0.2))
    assert ended == []
    ended = feed_in_frames(ep, silence(0.2))
    assert [type(event) for event in ended] == [UtteranceEnded]
    assert 600 <= ended[0].silence_ms < 700

    # Speech after the pause: that pause is no end; the next one is judged afresh.
    ep = endpointer(vad_model, hangover_ms=2000)
    feed_in_frames(ep, np.concatenate([silence(0.5), trimmed("send five hundred")]))
    paused = feed_in_frames(ep, silence(0.3))[-1]
    assert ep.end_pause(paused.number, at_silence_ms=600) == []
    later = feed_in_frames(ep, np.concatenate([trimmed("to Ravi"), silence(1.0)]))
    assert [type(event) for event in later] == [SpeechPaused]  # no end at 600 ms
    assert ep.end_pause(later[0].number) != []  # now, at the second pause
