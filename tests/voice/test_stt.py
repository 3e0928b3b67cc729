"""Speech to text on the real whisper tiny.en model, with spoken commands made by espeak-ng.

espeak-ng's robotic voices are harder for Whisper than people are (FACTS: tiny.en hears a
few words wrong on them, whichever path), so the bounds below are on the whole set, as
measured with bench/bench_stt.py, with a margin.
"""

import threading
from pathlib import Path

import numpy as np
import pytest

from nlu.model_files import require_directory
from tests.voice.spoken import (
    SpokenCommand,
    cached_noise_wav,
    load_commands,
    word_error_rate,
    words,
)
from voice.audio import PIPELINE_RATE as SAMPLE_RATE
from voice.audio import read_wav
from voice.stt import SpeechToText, SttSettings, _without_loop

CONTACTS = ("Ravi", "Jane", "John", "Mom", "Mike")  # demo user 1's contact names
SETTINGS = SttSettings(
    cpu_threads=1,
    compute_type="int8",
    beam_size=1,
    tail_pad_s=2.0,
    min_level_dbfs=-45.0,
    no_speech_threshold=0.6,
    min_avg_logprob=-0.5,
    vocabulary=["Check my balance", "Show my last 5 transactions", "Send 500 rupees to Ravi"],
)


@pytest.fixture(scope="module")
def stt() -> SpeechToText:
    speech = SpeechToText(require_directory("whisper-tiny.en"), SETTINGS)
    speech.warm_up()
    return speech


@pytest.fixture(scope="module")
def spoken() -> list[tuple[SpokenCommand, np.ndarray]]:
    return [(command, command.audio()) for command in load_commands()]


@pytest.fixture(scope="module")
def heard(stt: SpeechToText, spoken: list[tuple[SpokenCommand, np.ndarray]]) -> dict[str, str]:
    """Reference text → what the short path heard, with the contact names as hints."""
    return {command.text: stt.transcribe(audio, CONTACTS).text for command, audio in spoken}


def test_the_spoken_set_is_varied_and_large_enough() -> None:
    commands = load_commands()
    assert len(commands) >= 30
    assert len({c.voice for c in commands}) >= 5
    intents = {c.intent for c in commands}
    assert {"check_balance", "transaction_history", "send_money", "affirm", "deny"} <= intents
    assert {"cancel", "help", "repeat", "unknown"} <= intents


def test_spoken_files_are_16khz_mono_with_silence_around_the_words() -> None:
    command = load_commands()[0]
    audio, rate = read_wav(command.wav())
    assert rate == SAMPLE_RATE
    assert audio.dtype == np.float32 and audio.ndim == 1
    edge = SAMPLE_RATE // 4  # the first and last 250 ms
    assert np.abs(audio[:edge]).max() < 0.01 and np.abs(audio[-edge:]).max() < 0.01
    assert np.abs(audio).max() > 0.2


def test_spoken_commands_are_heard_with_few_word_errors(heard: dict[str, str]) -> None:
    wer = word_error_rate(list(heard.items()))
    exact = sum(words(text) == words(hypothesis) for text, hypothesis in heard.items())
    assert wer <= 0.2, heard
    assert exact >= 0.6 * len(heard), heard


def test_no_transcript_runs_on_past_what_was_said(heard: dict[str, str]) -> None:
    """Short windows make Whisper start its sentence again and again; that must not show."""
    for text, hypothesis in heard.items():
        assert len(words(hypothesis)) <= 2 * len(words(text)) + 1, (text, hypothesis)


@pytest.mark.parametrize(
    ("decoded", "kept"),
    [
        # Answers like those tiny.en gave with a 1-s pad and no timestamps.
        ("What can you do? What can you do? What can you", "What can you do?"),
        ("500 500 500 500 500 500", "500"),
        ("Ravi, Ravi, Ravi, Ravi, Ravi, R", "Ravi"),
        ("Give mom two hundred Give mom two hundred Give", "Give mom two hundred"),
        ("no, no, send it", "no, no, send it"),
        ("send 500 to ravi and 500 to jane", "send 500 to ravi and 500 to jane"),
    ],
)
def test_an_answer_that_starts_over_is_cut_where_it_repeats(decoded: str, kept: str) -> None:
    assert _without_loop(decoded)[0] == kept


def test_banking_commands_keep_their_amounts_and_names(
    spoken: list[tuple[SpokenCommand, np.ndarray]], heard: dict[str, str]
) -> None:
    amounts = [c for c, _ in spoken if c.amount is not None]
    names = [c for c, _ in spoken if c.receiver is not None]
    amounts_heard = [c for c in amounts if str(int(c.amount or 0)) in words(heard[c.text])]
    names_heard = [c for c in names if c.receiver in words(heard[c.text])]
    assert len(amounts_heard) >= 0.75 * len(amounts), heard
    assert len(names_heard) >= 0.7 * len(names), heard


def test_contact_name_hints_help_hear_the_names(
    stt: SpeechToText, spoken: list[tuple[SpokenCommand, np.ndarray]], heard: dict[str, str]
) -> None:
    named = [(c, audio) for c, audio in spoken if c.receiver is not None]
    without = [c for c, audio in named if c.receiver in words(stt.transcribe(audio).text)]
    with_hints = [c for c, _ in named if c.receiver in words(heard[c.text])]
    assert len(with_hints) > len(without)


def test_the_short_path_hears_as_well_as_the_full_window(
    stt: SpeechToText, spoken: list[tuple[SpokenCommand, np.ndarray]], heard: dict[str, str]
) -> None:
    """The word error rate on every clip (the full 30-s window costs ~1 s CPU a clip): on
    the 14 clips of up to 2.1 s alone one clip misheard moves it by 0.08, more than the
    margin, so which path won there depended on the CPU's int8 kernels. Word for word
    agreement is checked on those short clips, where the two paths differ most."""
    full = {c.text: stt.transcribe_full_window(audio, CONTACTS).text for c, audio in spoken}
    fast_all = [(c.text, heard[c.text]) for c, _ in spoken]
    full_all = [(c.text, full[c.text]) for c, _ in spoken]
    assert word_error_rate(fast_all) <= word_error_rate(full_all) + 0.05, (fast_all, full_all)
    short = [c.text for c, audio in spoken if len(audio) <= 2.1 * SAMPLE_RATE]
    assert len(short) >= 10
    agree = sum(words(heard[text]) == words(full[text]) for text in short)
    assert agree >= 0.6 * len(short), [(text, heard[text], full[text]) for text in short]


def test_a_short_command_takes_the_short_path(
    stt: SpeechToText, spoken: list[tuple[SpokenCommand, np.ndarray]]
) -> None:
    audio = next(a for c, a in spoken if c.text == "check my balance")
    transcript = stt.transcribe(audio, CONTACTS)
    assert transcript.path == "short"
    assert "balance" in words(transcript.text)
    assert transcript.audio_s == pytest.approx(len(audio) / SAMPLE_RATE)


@pytest.mark.parametrize("seconds", [0.5, 2.0, 8.0])
def test_silence_gives_no_text(stt: SpeechToText, seconds: float) -> None:
    quiet = np.random.default_rng(3).normal(0, 0.002, int(seconds * SAMPLE_RATE))
    for audio in (np.zeros(int(seconds * SAMPLE_RATE), np.float32), quiet.astype(np.float32)):
        transcript = stt.transcribe(audio, CONTACTS)
        assert transcript.text == ""
        assert transcript.path == "silent"


@pytest.mark.parametrize("kind", ["white", "pink"])
@pytest.mark.parametrize("amplitude", [0.05, 0.3])
@pytest.mark.parametrize("seconds", [1.0, 3.0])
def test_noise_gives_no_text(
    stt: SpeechToText, kind: str, amplitude: float, seconds: float
) -> None:
    noise, _ = read_wav(cached_noise_wav(kind, seconds, amplitude))
    for hints in ((), CONTACTS):
        transcript = stt.transcribe(noise, hints)
        assert transcript.text == "", transcript
        assert transcript.path != "silent"  # loud enough: the model itself said no


def test_empty_audio_gives_no_text(stt: SpeechToText) -> None:
    assert stt.transcribe(np.zeros(0, np.float32)).text == ""


@pytest.mark.parametrize(
    ("audio", "message"),
    [
        (np.array([0.1, np.nan, 0.2], np.float32), "NaN"),
        (np.full(1600, np.inf, np.float32), "NaN or infinite"),
        (np.zeros(1600, np.int16), "float32"),
        (np.zeros(1600, np.float64), "float32"),
        (np.zeros((2, 1600), np.float32), "1-D"),
        ([0.0] * 1600, "1-D float32 array"),
        (np.zeros(31 * SAMPLE_RATE, np.float32), "over 30 s"),
    ],
)
def test_bad_audio_is_refused_clearly(stt: SpeechToText, audio: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        stt.transcribe(audio)  # type: ignore[arg-type]  # not an array on purpose


def test_concurrent_calls_are_served_one_at_a_time_with_the_same_results(
    stt: SpeechToText, spoken: list[tuple[SpokenCommand, np.ndarray]], heard: dict[str, str]
) -> None:
    clips = spoken[:4]
    results: dict[str, str] = {}

    def run(command: SpokenCommand, audio: np.ndarray) -> None:
        results[command.text] = stt.transcribe(audio, CONTACTS).text

    threads = [threading.Thread(target=run, args=clip) for clip in clips]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {c.text: heard[c.text] for c, _ in clips}


def test_a_missing_model_is_reported_not_downloaded(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"model\.bin"):
        SpeechToText(tmp_path, SETTINGS)


def test_prompt_text_carries_the_contact_names(stt: SpeechToText) -> None:
    assert stt.prompt_text(["Ravi", " ", "Jane"]).endswith("Contacts: Ravi, Jane.")
    assert (
        stt.prompt_text()
        == "Check my balance. Show my last 5 transactions. Send 500 rupees to Ravi."
    )
