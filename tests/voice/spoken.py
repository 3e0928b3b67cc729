"""Spoken test audio: commands read aloud by espeak-ng, noise, and word error rate.

espeak-ng (Debian) speaks with formant voices quite unlike the assistant's piper voice, so
the speech-to-text model is never tested on its own assistant's speech. Each clip is a
16 kHz mono PCM16 WAV with silence before and after the words, as an endpointer with
pre-roll and hang-over would cut it. Files are made once into .cache/spoken/, named by a
hash of everything that shapes them, so tests and benchmarks share them.

    from tests.voice.spoken import load_commands
    for command in load_commands():
        path = command.wav()   # made on first use, then reused
"""

import hashlib
import re
import subprocess
import tempfile
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field

from nlu.numbers import normalise_numbers
from nlu.result import Intent
from voice.audio import PIPELINE_RATE as SAMPLE_RATE
from voice.audio import read_wav

ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = ROOT / ".cache" / "spoken"
COMMANDS_FILE = Path(__file__).with_name("spoken_commands.yaml")
# Seconds of silence before and after the words.
PAD_S = (0.3, 0.5)
# Part of every cache key: change it when the way clips are made changes.
RECIPE = "espeak-ng|sox -D|pcm16|v1"

NoiseKind = Literal["white", "pink"]


class SpokenCommand(BaseModel):
    """One line of spoken_commands.yaml: what is said, by which voice, and what it means."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str  # what espeak-ng reads, and the reference transcript
    intent: Intent  # what the assistant should understand, alone, without context
    voice: str  # an espeak-ng voice, with a variant after "+" ("en-us+f2"), or "festival:<name>"
    speed: int = Field(ge=80, le=450)  # words per minute
    pitch: int = Field(ge=0, le=99)
    amount: Decimal | None = None
    receiver: str | None = None
    count: int | None = None
    # The answer to a question the assistant asked ("Ravi" after "to whom?"): its intent
    # alone is `unknown`, the slot is what matters.
    answer: bool = False

    def wav(self, cache_dir: Path = CACHE_DIR) -> Path:
        return cached_spoken_wav(self.text, self.voice, self.speed, self.pitch, cache_dir)

    def audio(self) -> np.ndarray:
        """The clip as float32 samples at 16 kHz."""
        return read_wav(self.wav())[0]


def load_commands(path: Path = COMMANDS_FILE) -> list[SpokenCommand]:
    return [SpokenCommand.model_validate(item) for item in yaml.safe_load(path.read_text())]


def spoken_wav(
    text: str,
    path: Path,
    voice: str = "en-us",
    speed: int = 160,
    pitch: int = 50,
    hz: int = SAMPLE_RATE,
    pad_s: tuple[float, float] = PAD_S,
) -> Path:
    """Write `text` spoken by espeak-ng to `path`: mono PCM16 at `hz`, silence padded.

    A `voice` of "festival:<name>" ("festival:kal_diphone", "festival:cmu_us_slt_arctic_hts")
    is a Debian festival voice instead; `speed` and `pitch` then do not apply."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "spoken.wav"
        if voice.startswith("festival:"):
            script = Path(tmp) / "text.txt"
            script.write_text(text)
            choose = f"(voice_{voice.removeprefix('festival:')})"
            _run(["text2wave", "-eval", choose, "-o", str(raw), str(script)])
        else:
            espeak = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(raw)]
            _run([*espeak, "--", text])
        _run(_sox_to(path, hz, [str(raw)], ["pad", str(pad_s[0]), str(pad_s[1])]))
    return path


def noise_wav(
    path: Path,
    kind: NoiseKind = "white",
    seconds: float = 2.0,
    amplitude: float = 0.1,
    hz: int = SAMPLE_RATE,
) -> Path:
    """Write `seconds` of white or pink noise (peak `amplitude` of full scale) to `path`.

    SoX draws the same random numbers on every run (-R), so the file is repeatable.
    """
    _run(_sox_to(path, hz, ["-n"], ["synth", str(seconds), f"{kind}noise", "vol", str(amplitude)]))
    return path


def cached_spoken_wav(
    text: str, voice: str, speed: int, pitch: int, cache_dir: Path = CACHE_DIR
) -> Path:
    key = (RECIPE, _espeak_version(), text, voice, speed, pitch, SAMPLE_RATE, PAD_S)
    return _cached(cache_dir, key, lambda path: spoken_wav(text, path, voice, speed, pitch))


def cached_noise_wav(
    kind: NoiseKind, seconds: float, amplitude: float, cache_dir: Path = CACHE_DIR
) -> Path:
    key = (RECIPE, "noise", kind, seconds, amplitude, SAMPLE_RATE)
    return _cached(cache_dir, key, lambda path: noise_wav(path, kind, seconds, amplitude))


def words(text: str) -> list[str]:
    """Words to compare transcripts by: lower case, numbers in digits, no punctuation.

    "Send ₹500 to Ravi." and "send five hundred rupees to ravi" differ only by the
    currency word, which counts as one error: the sign is not a word either way.
    """
    text = normalise_numbers(text.lower().replace("’", "'"))
    text = re.sub(r"(?<=\d),(?=\d)", "", text)
    return re.sub(r"[^\w\s'.]|(?<!\d)\.|\.(?!\d)", " ", text).split()


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(substitutions + deletions + insertions, words in the reference)."""
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, hyp_word in enumerate(hyp, 1):
            previous, row[j] = (
                row[j],
                min(row[j] + 1, row[j - 1] + 1, previous + (ref_word != hyp_word)),
            )
    return row[-1], len(ref)


def word_error_rate(pairs: list[tuple[str, str]]) -> float:
    """Corpus WER over (reference, hypothesis) pairs: total errors / total reference words."""
    errors, total = (sum(n) for n in zip(*(word_errors(r, h) for r, h in pairs), strict=True))
    return errors / total


def _sox_to(path: Path, hz: int, inputs: list[str], effects: list[str]) -> list[str]:
    """A SoX command writing mono PCM16 at `hz` to `path`, the same bytes on every run:
    no dither (-D), fixed random numbers (-R)."""
    output = ["-r", str(hz), "-c", "1", "-b", "16", "-e", "signed-integer", str(path)]
    return ["sox", "-R", "-D", *inputs, *output, *effects]


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({result.returncode}): {result.stderr.strip()}")


@cache
def _espeak_version() -> str:
    return subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout


def _cached(cache_dir: Path, key: tuple[object, ...], make: Callable[[Path], Path]) -> Path:
    """cache_dir/<hash of key>.wav, made by `make(path)` into a temporary name, then renamed
    so that a reader never sees half a file."""
    digest = hashlib.sha256(repr(key).encode()).hexdigest()[:20]
    path = cache_dir / f"{digest}.wav"
    if not path.is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache_dir) as tmp:
            partial = Path(tmp) / path.name
            make(partial)
            partial.replace(path)
    return path
