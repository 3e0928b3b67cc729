"""Text-to-speech with the real piper voice: pieces, audio, cache."""

import numpy as np
import pytest

from nlu.model_files import require
from voice.tts import TextToSpeech, TtsSettings, speech_pieces

SETTINGS = TtsSettings(cpu_threads=1, length_scale=1.0, cache_size=4, prewarm=[])


@pytest.fixture(scope="module")
def tts() -> TextToSpeech:
    require("piper-joe/en_US-joe-medium.onnx.json")
    return TextToSpeech(require("piper-joe/en_US-joe-medium.onnx"), SETTINGS)


def samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        (
            "Your current account balance is 10,000 rupees.",
            ["Your current account balance is", "10,000 rupees."],
        ),
        (
            "Send 500 rupees to Ravi? Please confirm with your password.",
            ["Send", "500 rupees to Ravi?", "Please confirm with your password."],
        ),
        (
            "Your recent transactions: Received 5,000 rupees. Paid 2,000 rupees, twice.",
            ["Your recent transactions:", "Received 5,000 rupees.", "Paid 2,000 rupees, twice."],
        ),
        ("How much should I send to Ravi?", ["How much should I send to Ravi?"]),
        ("Okay.  Nothing was sent.", ["Okay.", "Nothing was sent."]),
        ("", []),
    ],
)
def test_replies_are_cut_into_sentences_and_fixed_openings(text: str, pieces: list[str]) -> None:
    assert speech_pieces(text) == pieces


def test_speech_is_audible_and_as_long_as_the_words(tts: TextToSpeech) -> None:
    short, long = (
        samples(tts.synthesize("Yes.")),
        samples(tts.synthesize("Your recent transactions are shown on the screen.")),
    )
    assert tts.sample_rate == 22050
    assert 0.2 < short.size / tts.sample_rate < long.size / tts.sample_rate < 6
    assert np.sqrt(np.mean(long**2)) > 0.05


def test_a_reply_comes_piece_by_piece_in_order(tts: TextToSpeech) -> None:
    text = "Your current account balance is 10,000 rupees. Goodbye!"
    produced = list(tts.pieces(text))
    assert len(produced) == 3  # the opening, the amount, the goodbye
    said = ["Your current account balance is", "ten thousand rupees.", "Goodbye!"]
    assert b"".join(produced) == b"".join(tts.synthesize(piece) for piece in said)


def test_amounts_are_said_in_lakhs(tts: TextToSpeech) -> None:
    """Piper reads "150000" the Western way; the reply says "one lakh fifty thousand"."""
    produced = b"".join(tts.pieces("Send 1,50,000 rupees to Ravi?"))
    said = tts.synthesize("Send") + tts.synthesize("one lakh fifty thousand rupees to Ravi?")
    assert produced == said


def test_a_said_piece_comes_from_the_cache_and_the_oldest_is_dropped(tts: TextToSpeech) -> None:
    first = tts.synthesize("Please confirm with your password.")
    assert tts.synthesize("Please confirm with your password.") is first
    for n in range(SETTINGS.cache_size):
        tts.synthesize(f"Number {n}.")
    assert tts.synthesize("Please confirm with your password.") is not first
