"""The voice path as a user feels it: spoken commands streamed in real time through /ws/voice.

Starts `server.py` (default settings: whole NLU cascade, whisper tiny.en, piper) on a fresh
SQLite database, waits until it is healthy, then streams each command of
tests/voice/spoken_commands.yaml (espeak-ng voices, not the assistant's) over its own
connection in frames paced like a microphone, and reports:

- end of speech → first reply audio byte (p50, p95): from the moment the last audible
  sample of the command would have left the speaker's mouth to the first binary frame of
  the reply;
- each stage's share, from the reply's `timings` (hang-over, transcription still running
  after the end was decided, assistant turn, first piece of speech);
- word error rate of the transcripts, and intent accuracy: the intent the server's NLU
  (POST /test-nlu) reads from the transcript against the command's intent. Bare answers
  ("Ravi", "five hundred") are spoken after a typed opening that asks for them and count
  as right when the reply reads the transfer back with that slot. A reading the assistant
  was not sure of (its reply: "I'm not sure what you want to do.") counts as `unknown`.

With `--pauses` it streams instead sentences said with a pause of 0.6-1.2 s in the middle
("send five hundred rupees to … Ravi") followed by silence, and counts the answers given
inside the pause: a transcript that arrives before the sentence's last word was said.
`--pauses-file bench/paused_heldout.yaml` uses held-out sentences instead (16, written by
someone who had not seen voice/turn.py), and `--voices` other voices.

The end-of-turn decision (voice.turn) is as configured; `--turn on` or `--turn off` (the
silence hang-over alone ends every utterance) chooses, for a before/after.
Each reply's `turn_cpu_ms` (CPU time of the Smart Turn check, when the model decided) is
summarised.

Prints figures; never fails on timing.

    .venv/bin/python bench/bench_voice.py [--frame-ms 40] [--repeat 1] [--rules-only]
        [--pauses] [--pauses-file bench/paused_heldout.yaml] [--voices V1,V2]
        [--turn on|off]
"""

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import websockets
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from bench_api import free_port, start_server, turn_taking  # noqa: E402

from tests.voice.spoken import (  # noqa: E402
    SpokenCommand,
    cached_spoken_wav,
    load_commands,
    word_error_rate,
    words,
)
from voice.audio import PIPELINE_RATE, float_to_pcm16, read_wav, resample  # noqa: E402

AUDIBLE = 0.01
NOT_UNDERSTOOD = "I'm not sure what you want to do."
TURN_TIMEOUT_S = 20  # from the first frame sent; a command is a few seconds long
STAGES = ("endpoint_ms", "stt_ms", "assistant_ms", "tts_first_ms")
# Sentences with a pause where a speaker stops to think: (before it, after it).
PAUSED = [
    ("send five hundred rupees to", "Ravi"),
    ("send five hundred rupees", "to Ravi"),
    ("what is my", "balance"),
    ("transfer two hundred rupees to", "Mike"),
    ("show my last", "five transactions"),
    ("pay Jane", "three hundred rupees"),
]
PAUSE_VOICES = ["en-us", "en+f2", "en-gb+m3"]
PAUSES_S = [0.6, 0.9, 1.2]


@dataclass
class Result:
    command: SpokenCommand
    transcript: str = ""
    reply: str = ""
    latency_ms: float | None = None
    timings: dict[str, int] = field(default_factory=dict)
    intent: str | None = None
    right: bool = False


def opening_for(command: SpokenCommand) -> str:
    """A typed turn after which the bare answer is what the assistant asked for."""
    return "send 500 rupees" if command.receiver else "I want to send money to Ravi"


async def stream(url: str, command: SpokenCommand, frame_ms: int) -> Result:
    samples, rate = read_wav(command.wav())
    samples = resample(samples, rate, PIPELINE_RATE)
    audible = np.nonzero(np.abs(samples) > AUDIBLE)[0]
    speech_end_s = (audible[-1] + 1) / PIPELINE_RATE if audible.size else 0.0
    audio = np.concatenate([samples, np.zeros(2 * PIPELINE_RATE, dtype=np.float32)])
    pcm, step = float_to_pcm16(audio), 2 * PIPELINE_RATE * frame_ms // 1000
    result = Result(command)
    async with websockets.connect(url, max_size=None) as socket:
        await _until(socket, "ready")
        if command.answer:
            await socket.send(json.dumps({"type": "text", "text": opening_for(command)}))
            await _until(socket, "audio_end")
        started = time.perf_counter()
        sender = asyncio.create_task(_send_paced(socket, pcm, step, frame_ms, started))
        with contextlib.suppress(TimeoutError):  # nothing heard: no turn, no reply
            await asyncio.wait_for(_collect(socket, result, started, speech_end_s), TURN_TIMEOUT_S)
        sender.cancel()
    return result


@dataclass
class PausedResult:
    said: str
    pause_s: float
    voice: str
    transcripts: list[str] = field(default_factory=list)
    cut: bool = False  # a transcript came before the sentence was over


def _trimmed(text: str, voice: str) -> np.ndarray:
    samples = read_wav(cached_spoken_wav(text, voice, 150, 50))[0]
    audible = np.nonzero(np.abs(samples) > AUDIBLE)[0]
    return samples[audible[0] : audible[-1] + 1]


async def stream_paused(
    url: str, parts: tuple[str, str], pause_s: float, voice: str, frame_ms: int
) -> PausedResult:
    """One sentence with a pause in it, then 3 s of silence, paced like a microphone."""
    edge = np.zeros(PIPELINE_RATE // 4, dtype=np.float32)
    gap = np.zeros(round(pause_s * PIPELINE_RATE), dtype=np.float32)
    first, rest = _trimmed(parts[0], voice), _trimmed(parts[1], voice)
    tail = np.zeros(3 * PIPELINE_RATE, dtype=np.float32)
    audio = np.concatenate([edge, first, gap, rest, tail])
    sentence_end_s = (edge.size + first.size + gap.size + rest.size) / PIPELINE_RATE
    pcm, step = float_to_pcm16(audio), 2 * PIPELINE_RATE * frame_ms // 1000
    result = PausedResult(" … ".join(parts), pause_s, voice)
    async with websockets.connect(url, max_size=None) as socket:
        await _until(socket, "ready")
        started = time.perf_counter()
        sender = asyncio.create_task(_send_paced(socket, pcm, step, frame_ms, started))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(len(audio) / PIPELINE_RATE + 5):
                async for frame in socket:
                    if isinstance(frame, str) and json.loads(frame)["type"] == "transcript":
                        at = time.perf_counter() - started
                        result.cut = result.cut or at < sentence_end_s
                        result.transcripts.append(json.loads(frame)["text"])
        sender.cancel()
    return result


async def run_paused(
    base: str, frame_ms: int, sentences: list[tuple[str, str]], voices: list[str]
) -> list[PausedResult]:
    url = await _voice_url(base)
    results = []
    for index, parts in enumerate(sentences):
        for shift, pause_s in enumerate(PAUSES_S):
            voice = voices[(index + shift) % len(voices)]
            results.append(await stream_paused(url, parts, pause_s, voice, frame_ms))
            print(".", end="", flush=True)
    return results


def report_paused(results: list[PausedResult]) -> None:
    print()
    for r in results:
        mark = "CUT" if r.cut else "ok"
        print(f"{mark:3} {r.pause_s:.1f} s {r.voice:9} {r.said:42} heard: {r.transcripts}")
    print(
        f"answers given inside a mid-sentence pause ({PAUSES_S[0]}-{PAUSES_S[-1]} s): "
        f"{sum(r.cut for r in results)}/{len(results)}"
    )


async def _collect(socket, result: Result, started: float, speech_end_s: float) -> None:
    """The transcript, the reply and the moment its first audio arrived."""
    async for frame in socket:
        if isinstance(frame, bytes):
            if result.latency_ms is None:
                result.latency_ms = (time.perf_counter() - started - speech_end_s) * 1000
            continue
        event = json.loads(frame)
        if event["type"] == "transcript":
            result.transcript = event["text"]
        elif event["type"] == "reply":
            result.reply, result.timings = event["reply"], event["timings"]
        elif event["type"] == "audio_end":
            return


async def _send_paced(socket, pcm: bytes, step: int, frame_ms: int, started: float) -> None:
    """Each frame leaves when a microphone would have finished recording it."""
    for index, start in enumerate(range(0, len(pcm), step)):
        due = started + (index + 1) * frame_ms / 1000
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        await socket.send(pcm[start : start + step])


async def _until(socket, kind: str) -> None:
    async for frame in socket:
        if isinstance(frame, str) and json.loads(frame)["type"] == kind:
            return


def judge(result: Result, base: str) -> None:
    command = result.command
    if command.answer:  # the transfer read back with the slot the answer gave
        slot = (
            f"to {command.receiver.title()}?"
            if command.receiver
            else f"{command.amount:.0f} rupees to"
        )
        # Amounts are written with Indian digit grouping ("2,000 rupees").
        result.right = result.reply.startswith("Send ") and slot in result.reply.replace(",", "")
        return
    if result.transcript and not result.reply.startswith(NOT_UNDERSTOOD):
        parsed = httpx.post(f"{base}/test-nlu", json={"message": result.transcript}).json()
        result.intent = parsed["result"]["intent"]
    else:  # nothing heard, or heard but not understood: the assistant acts on nothing
        result.intent = "unknown"
    result.right = result.intent == command.intent


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def report(results: list[Result]) -> None:
    print(f"stages: {'/'.join(STAGES)} (ms)")
    print(f"{'':2} {'ms':>6} {'stages':>19}  {'said':36} {'heard':36} intent")
    for r in results:
        mark = "ok" if r.right else "XX"
        latency = f"{r.latency_ms:6.0f}" if r.latency_ms is not None else "     -"
        stages = "/".join(str(r.timings.get(stage, "-")) for stage in STAGES)
        got = "(slot)" if r.command.answer else r.intent
        print(
            f"{mark:2} {latency} {stages:>19}  {r.command.text[:36]:36} "
            f"{r.transcript[:36]:36} {got}"
        )
    latencies = [r.latency_ms for r in results if r.latency_ms is not None]
    print(f"\ncommands: {len(results)}, answered with audio: {len(latencies)}")
    if latencies:
        p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
        print(f"end of speech → first reply audio: p50 {p50:.0f} ms, p95 {p95:.0f} ms")
    timed = [r.timings for r in results if r.timings]
    for stage in STAGES:
        values = [t.get(stage, 0) for t in timed]
        if values:
            print(f"  {stage:13} median {statistics.median(values):6.0f} ms")
    pairs = [(r.command.text, r.transcript) for r in results]
    print(f"word error rate: {100 * word_error_rate(pairs):.1f}%")
    intents = [r for r in results if not r.command.answer]
    answers = [r for r in results if r.command.answer]
    print(
        f"intent accuracy: {sum(r.right for r in intents)}/{len(intents)} "
        f"({100 * sum(r.right for r in intents) / max(1, len(intents)):.1f}%); "
        f"bare answers taken: {sum(r.right for r in answers)}/{len(answers)}"
    )
    exact = sum(words(r.command.text) == words(r.transcript) for r in results)
    print(f"transcripts word for word: {exact}/{len(results)}")
    checks = [t["turn_cpu_ms"] for t in timed if "turn_cpu_ms" in t]
    if checks:
        print(
            f"end-of-turn model checks: {len(checks)}, CPU per check median "
            f"{statistics.median(checks):.0f} ms, p95 {percentile(checks, 0.95):.0f} ms"
        )


async def _voice_url(base: str) -> str:
    form = {"username": "john@example.com", "password": "password123"}  # demo user 1
    token = httpx.post(f"{base}/api/auth/login", data=form, timeout=30).json()["access_token"]
    return base.replace("http", "ws", 1) + f"/ws/voice?token={token}"


async def run(base: str, frame_ms: int, repeat: int) -> list[Result]:
    url = await _voice_url(base)
    results = []
    for _ in range(repeat):
        for command in load_commands():
            result = await stream(url, command, frame_ms)
            await asyncio.to_thread(judge, result, base)
            results.append(result)
            print(".", end="", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frame-ms", type=int, default=40, help="client frame length")
    parser.add_argument("--repeat", type=int, default=1, help="times through the set")
    parser.add_argument("--rules-only", action="store_true", help="NLU by the rules alone")
    parser.add_argument("--pauses", action="store_true", help="sentences with a pause inside")
    parser.add_argument(
        "--pauses-file",
        type=Path,
        help="--pauses with these sentences instead (bench/paused_heldout.yaml: held out)",
    )
    parser.add_argument(
        "--voices", help="comma-separated voices for --pauses (festival:<name> too)"
    )
    parser.add_argument(
        "--turn", choices=["on", "off"], help="end of turn by meaning (default: config.yaml)"
    )
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        extra = {"BANKBOT_NLU__BACKENDS": "[rules]"} if args.rules_only else {}
        extra.update(turn_taking(args.turn))
        server = start_server(port, Path(tmp) / "bench.db", None, extra)
        base = f"http://127.0.0.1:{port}"
        try:
            if args.pauses or args.pauses_file:
                sentences = PAUSED
                if args.pauses_file:
                    items = yaml.safe_load(args.pauses_file.read_text(encoding="utf-8"))
                    sentences = [(item["before"], item["after"]) for item in items]
                voices = args.voices.split(",") if args.voices else PAUSE_VOICES
                report_paused(asyncio.run(run_paused(base, args.frame_ms, sentences, voices)))
            else:
                report(asyncio.run(run(base, args.frame_ms, args.repeat)))
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
