"""The microphone client's live path as a person at a terminal feels it.

Starts `server.py` (whole NLU cascade, whisper tiny.en, piper; demo mode, so that the demo
user can log in) and a private PulseAudio with a FIFO microphone and a null-sink speaker
(tests/voice/sound_server.py), runs `python -m voice.mic_client --token ...` on a
pseudo-terminal with the default devices, speaks single commands of
tests/voice/spoken_commands.yaml into the microphone at real time, and reports, over the
same commands in the same run:

- as the client measures it: its last loud microphone frame sent → the first reply sample
  due at the speaker (PortAudio's DAC time), the "first audio played" line it prints;
- as the sound server sees it: the last speech sample written into the microphone → the
  first reply sample recorded from the speaker's monitor (both sound-server latencies in);
- the WebSocket figure, as bench/bench_voice.py measures it: the same clips streamed
  straight to /ws/voice, end of speech → first reply audio byte.

Prints figures; never fails on timing.

    .venv/bin/python bench/bench_mic.py [--commands 10]
"""

import argparse
import asyncio
import re
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from bench_api import free_port, start_server  # noqa: E402
from bench_voice import percentile, stream  # noqa: E402

from tests.voice.sound_server import sound_server  # noqa: E402
from tests.voice.spoken import SpokenCommand, load_commands  # noqa: E402
from tests.voice.terminal import Terminal  # noqa: E402
from voice.audio import PIPELINE_RATE, read_wav, resample  # noqa: E402

PLAYED = re.compile(r"first audio played (\d+) ms after the end of speech")


def words_only(command: SpokenCommand) -> np.ndarray:
    samples, rate = read_wav(command.wav())
    samples = resample(samples, rate, PIPELINE_RATE)
    loud = np.flatnonzero(np.abs(samples) > 0.02)
    return samples[loud[0] : loud[-1] + 1]


def through_the_sound_server(
    base: str, token: str, commands: list[SpokenCommand], directory: Path
) -> tuple[list[float], list[float]]:
    """(client's figures, sound server's figures) in ms, one per answered command."""
    client_ms: list[float] = []
    outside_ms: list[float] = []
    with sound_server(directory) as sound:
        url = base.replace("http", "ws", 1) + "/ws/voice"
        argv = [sys.executable, "-m", "voice.mic_client", "--url", url, "--token", token]
        terminal = Terminal(argv, sound.env, ROOT)
        shown = terminal.expect("listening")
        with sound.recording() as speaker:
            for command in commands:
                _, spoke_until = sound.microphone.say(words_only(command))
                try:
                    shown = terminal.expect("first audio played", timeout=20, after=shown)
                except AssertionError:
                    print("x", end="", flush=True)  # no reply heard: counted as missing
                    continue
                client_ms.append(float(PLAYED.findall(terminal.screen)[-1]))
                first = min(speaker.loud(since=spoke_until + 0.05), default=None)
                while first is None and time.monotonic() < spoke_until + 20:
                    time.sleep(0.02)
                    first = min(speaker.loud(since=spoke_until + 0.05), default=None)
                if first is not None:
                    outside_ms.append((first - spoke_until) * 1000)
                shown = terminal.expect("listening", timeout=60, after=shown)
                time.sleep(0.5)
                print(".", end="", flush=True)
        terminal.quit()
    return client_ms, outside_ms


def show(name: str, values: list[float], of: int) -> None:
    if not values:
        print(f"{name}: no replies")
        return
    p50, p95 = percentile(values, 0.5), percentile(values, 0.95)
    print(f"{name}: p50 {p50:.0f} ms, p95 {p95:.0f} ms ({len(values)}/{of} answered)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", type=int, default=10, help="how many single commands")
    args = parser.parse_args()
    commands = [c for c in load_commands() if not c.answer][: args.commands]
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(port, Path(tmp) / "bank.db", None, {"BANKBOT_DEMO_MODE": "true"})
        try:
            base = f"http://127.0.0.1:{port}"
            form = {"username": "john@example.com", "password": "password123"}
            token = httpx.post(f"{base}/api/auth/login", data=form, timeout=30).json()
            token = token["access_token"]
            client_ms, outside_ms = through_the_sound_server(
                base, token, commands, Path(tmp) / "pulse"
            )
            url = base.replace("http", "ws", 1) + f"/ws/voice?token={token}"
            socket_ms = [
                r.latency_ms
                for r in (asyncio.run(stream(url, c, 40)) for c in commands)
                if r.latency_ms is not None
            ]
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"\n{len(commands)} single commands, end of speech → first reply audio:")
    show("  mic client, as it measures (through PulseAudio)", client_ms, len(commands))
    show("  sound server, microphone in → speaker out", outside_ms, len(commands))
    show("  /ws/voice directly (bench_voice's figure)", socket_ms, len(commands))


if __name__ == "__main__":
    main()
