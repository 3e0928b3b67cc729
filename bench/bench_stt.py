"""CPU cost and accuracy of speech to text: the library's 30-second window vs the short path.

For every spoken command of tests/voice/spoken_commands.yaml (espeak-ng voices, made once
into .cache/spoken/), with demo user 1's contact names as hints:
  padded  faster-whisper's own WhisperModel.transcribe() (every clip padded to 30 s), with
          the same prompt and beam size;
  short   voice.stt.SpeechToText.transcribe(): the encoder sees the clip plus tail_pad_s.
CPU is process time (time.process_time, all threads) of each call; the clips are about
1.6-4.3 s long, words plus ~0.8 s of silence. Reports per-command figures, then CPU per
command (mean, p50, p95; all clips and those of at most 2.5 s), word error rate, and how
often each path's words equal the reference, the amount and the contact name are heard.
Prints figures; never fails on timing.

    .venv/bin/python bench/bench_stt.py [--model whisper-tiny.en] [--threads 1] [--beam 1]
"""

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from faster_whisper import WhisperModel  # noqa: E402

from nlu.model_files import require_directory  # noqa: E402
from tests.voice.spoken import SpokenCommand, load_commands, word_error_rate, words  # noqa: E402
from voice.audio import PIPELINE_RATE  # noqa: E402
from voice.stt import SpeechToText, SttSettings  # noqa: E402

CONTACTS = ("Ravi", "Jane", "John", "Mom", "Mike")
VOCABULARY = ["Check my balance", "Show my last 5 transactions", "Send 500 rupees to Ravi"]
TWO_SECONDS = 2.5  # clips up to this long (words plus silence) count as 2-s commands


@dataclass
class Heard:
    text: str
    cpu_s: float
    audio_s: float


def padded(model: WhisperModel, audio, prompt: str, beam: int) -> Heard:
    started = time.process_time()
    segments, _ = model.transcribe(
        audio, language="en", beam_size=beam, initial_prompt=prompt, vad_filter=False
    )
    text = "".join(segment.text for segment in segments).strip()
    return Heard(text, time.process_time() - started, len(audio) / PIPELINE_RATE)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summary(name: str, commands: list[SpokenCommand], results: list[Heard]) -> str:
    pairs = [(c.text, r.text) for c, r in zip(commands, results, strict=True)]
    exact = sum(words(ref) == words(hyp) for ref, hyp in pairs)
    amounts = [(c, r) for c, r in zip(commands, results, strict=True) if c.amount is not None]
    names = [(c, r) for c, r in zip(commands, results, strict=True) if c.receiver]
    amounts_ok = sum(str(int(c.amount or 0)) in words(r.text) for c, r in amounts)
    names_ok = sum(c.receiver in words(r.text) for c, r in names)
    cpu = [r.cpu_s for r in results]
    two = [r.cpu_s for r in results if r.audio_s <= TWO_SECONDS]
    return (
        f"{name:7} CPU s/command mean {statistics.mean(cpu):.3f} p50 {percentile(cpu, 0.5):.3f} "
        f"p95 {percentile(cpu, 0.95):.3f} | <= {TWO_SECONDS} s clips ({len(two)}): mean "
        f"{statistics.mean(two):.3f} p50 {percentile(two, 0.5):.3f} max {max(two):.3f}\n"
        f"        WER {word_error_rate(pairs):.3f}, exact {exact}/{len(pairs)}, "
        f"amount heard {amounts_ok}/{len(amounts)}, name heard {names_ok}/{len(names)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="whisper-tiny.en", help="a directory under models/")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--beam", type=int, default=1)
    parser.add_argument("--tail-pad", type=float, default=2.0)
    args = parser.parse_args()
    model_dir = require_directory(args.model)
    settings = SttSettings(
        cpu_threads=args.threads,
        compute_type="int8",
        beam_size=args.beam,
        tail_pad_s=args.tail_pad,
        min_level_dbfs=-45.0,
        no_speech_threshold=0.6,
        min_avg_logprob=-0.5,
        vocabulary=VOCABULARY,
    )
    stt = SpeechToText(model_dir, settings)
    stt.warm_up()
    library = WhisperModel(
        str(model_dir), device="cpu", compute_type="int8", cpu_threads=args.threads
    )
    prompt = stt.prompt_text(CONTACTS)
    commands = load_commands()
    for command in commands:
        command.audio()  # make the WAV files before timing anything
    padded(library, commands[0].audio(), prompt, args.beam)  # warm the library's path too

    print(f"model {args.model}, {args.threads} thread(s), beam {args.beam}, prompt {prompt!r}")
    print(f"{'clip s':>6} {'padded':>7} {'short':>6} path   reference | padded | short")
    results: dict[str, list[Heard]] = {"padded": [], "short": []}
    paths: dict[str, int] = {}
    for command in commands:
        audio = command.audio()
        slow = padded(library, audio, prompt, args.beam)
        fast = stt.transcribe(audio, CONTACTS)
        results["padded"].append(slow)
        results["short"].append(Heard(fast.text, fast.cpu_ms / 1000, fast.audio_s))
        paths[fast.path] = paths.get(fast.path, 0) + 1
        print(
            f"{fast.audio_s:6.2f} {slow.cpu_s:7.3f} {fast.cpu_ms / 1000:6.3f} "
            f"{fast.path:6} {command.text!r} | {slow.text!r} | {fast.text!r}",
            flush=True,
        )
    print()
    for name, heard in results.items():
        print(summary(name, commands, heard))
    print(f"short path taken: {paths}")


if __name__ == "__main__":
    main()
