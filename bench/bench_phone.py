"""Phone audio: the best way to feed 8 kHz speech to the STT, and how fast a call answers.

wer      Word error rate of the STT (voice.stt.SpeechToText, as configured: the short path,
         the vocabulary prompt) on Asterisk's studio-recorded 8 kHz prompts (Debian's
         asterisk-core-sounds-en-wav; the texts from asterisk-core-sounds-en's
         core-sounds-en.txt): a fixed-seed sample of prompts of at least three words, each
         fed to whisper in several ways:
           soxr       band-limited resampling to 16 kHz (libsoxr HQ), the samples as they are
           linear     linear interpolation to 16 kHz, no anti-imaging filter (what a call does:
                      voice.audio.LinearUpsampler, phone.upsampler)
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
import asyncio
import gzip
import random
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from bench_api import free_port, start_server, turn_taking  # noqa: E402

from nlu.model_files import require, require_directory  # noqa: E402
from server import VAD_MODEL, load_settings  # noqa: E402
from tests.voice.spoken import cached_spoken_wav, word_error_rate  # noqa: E402
from voice import audiosocket as wire  # noqa: E402
from voice.audio import (  # noqa: E402
    PHONE_RATE,
    PIPELINE_RATE,
    LinearUpsampler,
    float_to_pcm16,
    mulaw_decode,
    mulaw_encode,
    read_wav,
    resample,
)
from voice.stt import SpeechToText  # noqa: E402
from voice.vad import Endpointer, SileroVad, UtteranceEnded, VadSettings  # noqa: E402

SOUNDS = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
TEXTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
MAX_CLIP_S = 15.0  # voice.vad.max_utterance_s: a phone utterance is cut there anyway


def upsample_soxr(samples: np.ndarray) -> np.ndarray:
    return resample(samples, PHONE_RATE, PIPELINE_RATE)


def upsample_linear(samples: np.ndarray) -> np.ndarray:
    return LinearUpsampler().push(samples)


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


def utterances(audio: np.ndarray, vad: Path, settings: VadSettings) -> list[np.ndarray]:
    """The utterances of 16 kHz audio as a call's endpointer cuts them (then 1 s of quiet)."""
    endpointer = Endpointer(SileroVad(vad), settings)
    events = endpointer.feed(np.concatenate([audio, np.zeros(PIPELINE_RATE, dtype=np.float32)]))
    return [event.audio for event in events if isinstance(event, UtteranceEnded)]


def padded(utterance: np.ndarray, pad_s: tuple[float, float]) -> np.ndarray:
    before, after = (np.zeros(round(s * PIPELINE_RATE), dtype=np.float32) for s in pad_s)
    return np.concatenate([before, utterance, after])


def measure_wer(
    models: list[str], feeds: list[str], sample: int, seed: int, cut: bool, pad_s: list[float]
) -> None:
    chosen = prompts(sample, seed)
    clips = []
    for path, text in chosen:
        samples, rate = read_wav(path)
        assert rate == PHONE_RATE, f"{path} is {rate} Hz"
        clips.append((samples, text))
    words = sum(len(text.split()) for _, text in clips)
    seconds = sum(len(s) for s, _ in clips) / PHONE_RATE
    print(f"{len(clips)} prompts (seed {seed}), {words} words, {seconds:.0f} s of 8 kHz speech")
    settings = load_settings().voice
    how = "cut by the VAD endpointer" if cut else "whole files"
    print(f"{how}; silence added around each clip (s): {pad_s}")
    print(f"{'model':16} {'feed':8} {'pad':>3} {'WER':>6} {'empty':>5} {'exact':>5} {'s/clip':>6}")
    for model in models:
        stt = SpeechToText(require_directory(model), settings.stt)
        stt.warm_up()
        for feed in feeds:
            fed = [(FEEDS[feed](samples), text) for samples, text in clips]
            if cut:
                pieces = [
                    (utterances(audio, require(VAD_MODEL), settings.vad), t) for audio, t in fed
                ]
            else:
                pieces = [([audio], text) for audio, text in fed]
            for pad in (False, True) if any(pad_s) else (False,):
                pairs, empty, started = [], 0, time.perf_counter()
                for clip, text in pieces:
                    heard = " ".join(
                        stt.transcribe(padded(piece, tuple(pad_s)) if pad else piece).text
                        for piece in clip
                    ).strip()
                    empty += not heard
                    pairs.append((text, heard))
                wall = (time.perf_counter() - started) / len(clips)
                exact = sum(word_error_rate([pair]) == 0 for pair in pairs)
                print(
                    f"{model:16} {feed:8} {'yes' if pad else 'no':>3} "
                    f"{100 * word_error_rate(pairs):5.1f}% {empty:5} {exact:5} {wall:6.2f}",
                    flush=True,
                )


SECRET = "bench-phone-registration-secret"
DEMO_PIN = "1234"  # every demo user's published telephone PIN (data/demo_users.yaml)
QUESTIONS = ("what is my balance", "check my balance", "how much money do I have")
VOICES = ("en-us", "en+f2", "en-us+m3", "en+f4")
AUDIBLE = 0.01
QUIET_S = 1.0  # no reply frame for this long: the reply (or greeting) is over
SLOW_MS = 1500  # turns this slow are listed


async def phone_call(base: str, audiosocket_port: int, user: int, question: np.ndarray) -> float:
    """One AudioSocket call: register, connect, type the PIN when asked, listen to the
    greeting, ask; end of the question's last audible sample → first frame of the
    answer, in ms."""
    async with httpx.AsyncClient() as client:
        form = {"caller": f"+1555010000{user}", "secret": SECRET}
        answer = await client.post(f"{base}/telephony/audiosocket/calls", data=form)
        call_id = uuid.UUID(answer.text)
    reader, writer = await asyncio.open_connection("127.0.0.1", audiosocket_port)
    frames: list[float] = []  # arrival time of each reply audio frame
    receiving = asyncio.create_task(_receive(reader, frames))
    try:
        writer.write(wire.call_id(call_id))
        while not frames:  # "type your PIN": the keys stop it, the greeting follows
            await asyncio.sleep(0.02)
        for key in DEMO_PIN + "#":
            writer.write(wire.dtmf(key))
            await asyncio.sleep(0.15)
        typed = len(frames)
        while len(frames) == typed or time.perf_counter() - frames[-1] < QUIET_S:
            await asyncio.sleep(0.02)
        heard_before = len(frames)
        audible = np.nonzero(np.abs(question) > AUDIBLE)[0]
        speech_s = (audible[-1] + 1) / PHONE_RATE
        pcm = float_to_pcm16(np.concatenate([question, np.zeros(2 * PHONE_RATE, np.float32)]))
        started = time.perf_counter()
        for index, start in enumerate(range(0, len(pcm), wire.FRAME_BYTES)):
            await asyncio.sleep(max(0.0, started + index * 0.02 - time.perf_counter()))
            writer.write(wire.audio(pcm[start : start + wire.FRAME_BYTES]))
            if len(frames) > heard_before:
                break
        while len(frames) == heard_before:
            await asyncio.sleep(0.005)
        return (frames[heard_before] - started - speech_s) * 1000
    finally:
        writer.write(wire.hangup())
        writer.close()
        receiving.cancel()


async def _receive(reader: asyncio.StreamReader, frames: list[float]) -> None:
    decoder = wire.FrameDecoder()
    while data := await reader.read(65536):
        for message in decoder.feed(data):
            if isinstance(message, wire.Audio):
                frames.append(time.perf_counter())


async def latency_rounds(
    base: str, port: int, calls: int, rounds: int
) -> list[tuple[float, str, str]]:
    """(ms, question, voice) of each turn."""
    results = []
    for round_ in range(rounds):
        said = [
            (QUESTIONS[(round_ + n) % len(QUESTIONS)], VOICES[n % len(VOICES)])
            for n in range(calls)
        ]
        asked = [phone_audio(question, voice) for question, voice in said]
        found = await asyncio.gather(
            *(phone_call(base, port, n + 1, asked[n]) for n in range(calls))
        )
        results += [(ms, *said[n]) for n, ms in enumerate(found)]
    return results


def phone_audio(text: str, voice: str) -> np.ndarray:
    samples, rate = read_wav(cached_spoken_wav(text, voice, 150, 50))
    return resample(samples, rate, PHONE_RATE)


def measure_latency(calls: list[int], rounds: int, cascade: bool, turn: str | None) -> None:
    port, audiosocket_port = free_port(), free_port()
    settings = {
        "BANKBOT_AUDIOSOCKET__ENABLED": "true",
        "BANKBOT_AUDIOSOCKET__PORT": str(audiosocket_port),
        "BANKBOT_AUDIOSOCKET__REGISTRATION_SECRET": SECRET,
        **({} if cascade else {"BANKBOT_NLU__BACKENDS": "[rules]"}),
        **turn_taking(turn),
    }
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(port, Path(tmp) / "bench.db", None, settings)
        try:
            base = f"http://127.0.0.1:{port}"
            ending = {
                "on": "end-of-turn decision",
                "off": "fixed hang-over",
                None: "turn as configured",
            }[turn]
            nlu = "cascade" if cascade else "rules only"
            print(f"AudioSocket, NLU {nlu}, {ending}, {rounds} rounds")
            for concurrent in calls:
                turns = asyncio.run(latency_rounds(base, audiosocket_port, concurrent, rounds))
                found = [ms for ms, _, _ in turns]
                print(
                    f"{concurrent} concurrent call(s): end of speech → first reply frame "
                    f"p50 {percentile(found, 0.5):.0f} ms, p95 {percentile(found, 0.95):.0f} ms "
                    f"({len(found)} turns)",
                    flush=True,
                )
                for ms, question, voice in sorted(turns, reverse=True):
                    if ms >= SLOW_MS:  # most likely waited out the longest silence
                        print(f"  {ms:.0f} ms: {question!r} ({voice})")
        finally:
            server.terminate()
            server.wait(timeout=30)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    wer = commands.add_parser("wer", help="word error rate on Asterisk's 8 kHz prompts")
    wer.add_argument("--sample", type=int, default=100, help="prompts measured")
    wer.add_argument("--seed", type=int, default=6)
    wer.add_argument("--models", nargs="+", default=["whisper-tiny.en", "whisper-base"])
    wer.add_argument("--feeds", nargs="+", default=list(FEEDS), choices=list(FEEDS))
    wer.add_argument("--cut", action="store_true", help="cut clips as a call's VAD does")
    wer.add_argument(
        "--pad",
        nargs=2,
        type=float,
        default=[0.0, 0.0],
        metavar=("BEFORE", "AFTER"),
        help="also measure with this much silence added before and after each clip",
    )
    latency = commands.add_parser("latency", help="end of speech → reply over AudioSocket")
    latency.add_argument("--calls", nargs="+", type=int, default=[1, 4])
    latency.add_argument("--rounds", type=int, default=5, help="turns per call")
    latency.add_argument("--cascade", action="store_true", help="the whole NLU cascade")
    latency.add_argument(
        "--turn", choices=["on", "off"], help="end of turn by meaning (default: config.yaml)"
    )
    args = parser.parse_args()
    if args.command == "latency":
        measure_latency(args.calls, args.rounds, args.cascade, args.turn)
    if args.command == "wer":
        measure_wer(args.models, args.feeds, args.sample, args.seed, args.cut, args.pad)


if __name__ == "__main__":
    main()
