"""Phone audio: the best way to feed 8 kHz speech to the STT, and how fast a call answers.

wer      Word error rate of the STT (voice.stt.SpeechToText, as configured: the short path,
         the vocabulary prompt) on Asterisk's studio-recorded 8 kHz prompts (Debian's
         asterisk-core-sounds-en-wav; the texts from asterisk-core-sounds-en's
         core-sounds-en.txt): a fixed-seed sample of prompts of at least three words, each
         fed to whisper in several ways:
           soxr       band-limited resampling to 16 kHz (libsoxr HQ), the samples as they are
           linear     linear interpolation to 16 kHz (no anti-imaging filter)
           preemph    pre-emphasis (y[n] = x[n] - 0.97 x[n-1]) at 8 kHz, then soxr
           band       cut to the telephone band (300-3400 Hz), then soxr
           mulaw      G.711 μ-law encoded and decoded (what Twilio carries), then soxr
latency  End of speech → first reply audio frame over real AudioSocket TCP connections, for
         1 and 4 concurrent calls (p50/p95): `server.py` with the AudioSocket server on,
         each call speaking a balance question (espeak-ng, 8 kHz) in 20 ms frames at
         real time.

Prints figures; never fails on timing.

    .venv/bin/python bench/bench_phone.py wer [--sample 100] [--models whisper-tiny.en ...]
    .venv/bin/python bench/bench_phone.py latency [--calls 1 4] [--rounds 5]
"""

import argparse
import gzip
import random
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from nlu.model_files import require_directory  # noqa: E402
from server import load_settings  # noqa: E402
from tests.voice.spoken import word_error_rate  # noqa: E402
from voice.audio import mulaw_decode, mulaw_encode, read_wav, resample  # noqa: E402
from voice.stt import SpeechToText  # noqa: E402

PHONE_RATE, STT_RATE = 8000, 16000
SOUNDS = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
TEXTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
MAX_CLIP_S = 15.0  # voice.vad.max_utterance_s: a phone utterance is cut there anyway


def upsample_soxr(samples: np.ndarray) -> np.ndarray:
    return resample(samples, PHONE_RATE, STT_RATE)


def upsample_linear(samples: np.ndarray) -> np.ndarray:
    positions = np.arange(2 * len(samples)) / 2
    return np.interp(positions, np.arange(len(samples)), samples).astype(np.float32)


def pre_emphasised(samples: np.ndarray) -> np.ndarray:
    emphasised = np.append(samples[:1], samples[1:] - 0.97 * samples[:-1])
    return upsample_soxr(emphasised / max(1.0, float(np.abs(emphasised).max())))


def telephone_band(samples: np.ndarray) -> np.ndarray:
    spectrum = np.fft.rfft(samples)
    hz = np.fft.rfftfreq(len(samples), 1 / PHONE_RATE)
    spectrum[(hz < 300) | (hz > 3400)] = 0
    return upsample_soxr(np.fft.irfft(spectrum, len(samples)).astype(np.float32))


def through_mulaw(samples: np.ndarray) -> np.ndarray:
    return upsample_soxr(mulaw_decode(mulaw_encode(samples)))


FEEDS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "soxr": upsample_soxr,
    "linear": upsample_linear,
    "preemph": pre_emphasised,
    "band": telephone_band,
    "mulaw": through_mulaw,
}


def prompts(sample: int, seed: int) -> list[tuple[Path, str]]:
    """(WAV file, what it says) for `sample` prompts of real words, chosen with `seed`."""
    found = []
    with gzip.open(TEXTS, "rt", encoding="utf-8") as lines:
        listed = list(lines)
    for line in listed:
        name, _, text = line.partition(": ")
        path = SOUNDS / f"{name.strip()}.wav"
        text = text.strip()
        if not text or "[" in text or not path.is_file() or len(text.split()) < 3:
            continue
        # Spoken as "star" and "pound" in these recordings.
        text = text.replace("*", " star ").replace("#", " pound ")
        found.append((path, re.sub(r"\s+", " ", text)))
    found = [(p, t) for p, t in found if _seconds(p) <= MAX_CLIP_S]
    return random.Random(seed).sample(sorted(found), min(sample, len(found)))


def _seconds(path: Path) -> float:
    samples, rate = read_wav(path)
    return len(samples) / rate


def measure_wer(models: list[str], feeds: list[str], sample: int, seed: int) -> None:
    chosen = prompts(sample, seed)
    clips = []
    for path, text in chosen:
        samples, rate = read_wav(path)
        assert rate == PHONE_RATE, f"{path} is {rate} Hz"
        clips.append((samples, text))
    words = sum(len(text.split()) for _, text in clips)
    seconds = sum(len(s) for s, _ in clips) / PHONE_RATE
    print(f"{len(clips)} prompts (seed {seed}), {words} words, {seconds:.0f} s of 8 kHz speech")
    settings = load_settings().voice.stt
    print(f"{'model':16} {'feed':8} {'WER':>6} {'empty':>5} {'exact':>5} {'s/clip':>6}")
    for model in models:
        stt = SpeechToText(require_directory(model), settings)
        stt.warm_up()
        for feed in feeds:
            pairs, empty, started = [], 0, time.perf_counter()
            for samples, text in clips:
                heard = stt.transcribe(FEEDS[feed](samples)).text
                empty += not heard
                pairs.append((text, heard))
            wall = (time.perf_counter() - started) / len(clips)
            exact = sum(word_error_rate([pair]) == 0 for pair in pairs)
            print(
                f"{model:16} {feed:8} {100 * word_error_rate(pairs):5.1f}% {empty:5} "
                f"{exact:5} {wall:6.2f}",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    wer = commands.add_parser("wer", help="word error rate on Asterisk's 8 kHz prompts")
    wer.add_argument("--sample", type=int, default=100, help="prompts measured")
    wer.add_argument("--seed", type=int, default=6)
    wer.add_argument("--models", nargs="+", default=["whisper-tiny.en", "whisper-base"])
    wer.add_argument("--feeds", nargs="+", default=list(FEEDS), choices=list(FEEDS))
    args = parser.parse_args()
    if args.command == "wer":
        measure_wer(args.models, args.feeds, args.sample, args.seed)


if __name__ == "__main__":
    main()
