"""`python -m voice.mic_client`: talk to the assistant's /ws/voice from a terminal.

Streams the microphone (or `--input-wav FILE`, paced in real time) as 100 ms frames of
PCM16LE mono at 16 kHz, prints what the server heard and answered with its timings, plays
the spoken reply (or writes it to `--output-wav FILE`), and asks for the password with a
hidden prompt when a transfer needs it. When standard input is not a terminal the password
is the next line of it (scripts and tests), or `--password-env VAR` names a variable
holding it. The password is never printed.

With `--input-wav` the client sends the file, says `end_of_speech`, waits for the replies
to finish (including a password step) and exits: 0 when the server answered without an
error, 1 otherwise, 2 when the audio device or the WAV file it needs is missing. Latencies
are printed from the end of the file's speech (its last frame above -40 dBFS), or from the
password message.
"""

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from voice.audio import (
    PIPELINE_RATE,
    AudioFormatError,
    float_to_pcm16,
    pcm16_to_float,
    read_wav,
    resample,
    write_wav,
)

FRAME_SAMPLES = PIPELINE_RATE // 10  # 100 ms
FRAME_S = FRAME_SAMPLES / PIPELINE_RATE
SPEECH_DBFS = -40.0  # a frame of a file louder than this is taken for speech
QUIET_S = 1.0  # after the last reply's audio, this long with no new event ends a file run


class CannotStart(Exception):
    """Something this run needs is missing (PortAudio, a sound card, a readable WAV file);
    the message says what to do."""


def open_sounddevice(need_input: bool, need_output: bool) -> ModuleType:
    """The `sounddevice` module, once PortAudio and the needed default devices are found."""
    try:
        import sounddevice  # PortAudio is loaded here; only runs that use a device need it
    except OSError as error:
        raise CannotStart(
            f"PortAudio is not available ({error}); install it (Debian: libportaudio2), "
            "or use --input-wav FILE and --output-wav FILE"
        ) from error
    for kind, needed, instead in (
        ("input", need_input, "--input-wav FILE"),
        ("output", need_output, "--output-wav FILE"),
    ):
        if needed:
            try:
                sounddevice.query_devices(kind=kind)
            except (sounddevice.PortAudioError, ValueError) as error:
                raise CannotStart(
                    f"no audio {kind} device found ({error}); use {instead} instead"
                ) from error
    return sounddevice


def voice_url(url: str, user_id: int, token: str | None) -> str:
    """`url` with user_id (and token) added to its query."""
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query), ("user_id", str(user_id))]
    if token:
        query.append(("token", token))
    return urlunsplit(parts._replace(query=urlencode(query)))


def level_dbfs(pcm16: bytes) -> float:
    """Root-mean-square level of a PCM16 frame, in dB of full scale."""
    rms = float(np.sqrt(np.mean(np.square(pcm16_to_float(pcm16))))) if pcm16 else 0.0
    return 20 * np.log10(max(rms, 1e-10))


def wav_frames(path: Path) -> list[bytes]:
    """A WAV file as 100 ms frames of 16 kHz PCM16."""
    try:
        samples, rate = read_wav(path)
    except (OSError, AudioFormatError) as error:
        raise CannotStart(f"cannot read {path}: {error}") from error
    pcm = float_to_pcm16(resample(samples, rate, PIPELINE_RATE))
    step = 2 * FRAME_SAMPLES
    return [pcm[start : start + step] for start in range(0, len(pcm), step)]


class Microphone:
    """The default input device as 100 ms PCM16 frames."""

    def __init__(self, sounddevice: ModuleType) -> None:
        self._loop = asyncio.get_running_loop()
        self._frames: asyncio.Queue[bytes] = asyncio.Queue()
        self._stream = sounddevice.RawInputStream(
            samplerate=PIPELINE_RATE,
            channels=1,
            dtype="int16",
            blocksize=FRAME_SAMPLES,
            callback=self._captured,
        )

    def _captured(self, data: Any, frames: int, at: Any, status: Any) -> None:
        self._loop.call_soon_threadsafe(self._frames.put_nowait, bytes(data))

    async def frames(self) -> AsyncIterator[bytes]:
        self._stream.start()
        try:
            while True:
                yield await self._frames.get()
        finally:
            self._stream.stop()
            self._stream.close()


class Speaker:
    """Plays reply audio on the default output device; `stop()` drops what is queued."""

    def __init__(self, sounddevice: ModuleType) -> None:
        self._sounddevice = sounddevice
        self._stream: Any = None
        self._rate = 0
        self._queued = bytearray()
        self._lock = threading.Lock()

    def begin(self, sample_rate: int) -> None:
        if sample_rate != self._rate:
            self.close()
            self._stream = self._sounddevice.RawOutputStream(
                samplerate=sample_rate, channels=1, dtype="int16", callback=self._fill
            )
            self._stream.start()
            self._rate = sample_rate

    def _fill(self, out: Any, frames: int, at: Any, status: Any) -> None:
        wanted = len(out)
        with self._lock:
            chunk = bytes(self._queued[:wanted])
            del self._queued[:wanted]
        out[: len(chunk)] = chunk
        out[len(chunk) :] = bytes(wanted - len(chunk))

    def push(self, pcm16: bytes) -> None:
        with self._lock:
            self._queued += pcm16

    def stop(self) -> None:
        with self._lock:
            self._queued.clear()

    async def drain(self) -> None:
        while self._queued:
            await asyncio.sleep(0.05)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None
            self._rate = 0


class WavRecorder:
    """Collects the reply audio and writes it to one WAV file at the first reply's rate."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pieces: list[tuple[int, bytearray]] = []

    def begin(self, sample_rate: int) -> None:
        self._pieces.append((sample_rate, bytearray()))

    def push(self, pcm16: bytes) -> None:
        if self._pieces:
            self._pieces[-1][1].extend(pcm16)

    def stop(self) -> None:
        """Barge-in: what arrived is kept, as a recording would have heard it."""

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        if not self._pieces:
            return
        rate = self._pieces[0][0]
        audio = [resample(pcm16_to_float(bytes(pcm)), hz, rate) for hz, pcm in self._pieces]
        samples = np.concatenate(audio)
        write_wav(self.path, samples, rate)
        print(f"reply audio: {samples.size / rate:.2f} s written to {self.path}", flush=True)


def read_password(env_name: str | None) -> str:
    """From the environment variable, a hidden prompt, or the next line of standard input."""
    if env_name:
        return os.environ.get(env_name, "")
    if sys.stdin.isatty():
        return getpass.getpass("Password (hidden): ")
    print("password: reading a line from standard input", flush=True)
    return sys.stdin.readline().rstrip("\r\n")


class Client:
    """One connection: sends frames, reacts to events, knows when a file run is over."""

    def __init__(
        self, socket: ClientConnection, sink: Speaker | WavRecorder, password_env: str | None
    ) -> None:
        self.socket = socket
        self.sink = sink
        self.password_env = password_env
        self.replies = 0
        self.errors = 0
        self.speaking = False  # between audio_start and audio_end
        self.asking = False  # waiting for the user to give the password
        self.checking = False  # the password was sent, its reply has not come yet
        self.last_event = time.monotonic()
        # What the latencies printed are measured from: (instant, its name).
        self.mark = (time.monotonic(), "connecting")
        self.first_audio = False
        self.reply_mark = self.mark  # the mark of the reply being spoken
        self._asking: asyncio.Task[None] | None = None

    async def send_file(self, frames: list[bytes]) -> None:
        """Frames in real time; the end of speech is the last loud frame sent (estimated)."""
        started = time.monotonic()
        for index, frame in enumerate(frames):
            await asyncio.sleep(max(0.0, started + (index + 1) * FRAME_S - time.monotonic()))
            await self.socket.send(frame)
            if level_dbfs(frame) > SPEECH_DBFS:
                self.mark = (time.monotonic(), "the end of speech")
        await self.socket.send(json.dumps({"type": "end_of_speech"}))

    async def send_microphone(self, microphone: Microphone) -> None:
        async for frame in microphone.frames():
            await self.socket.send(frame)

    async def receive(self) -> None:
        async for message in self.socket:
            self.last_event = time.monotonic()
            if isinstance(message, bytes):
                self.on_audio(message)
            else:
                await self.on_event(json.loads(message))

    def on_audio(self, pcm16: bytes) -> None:
        if not self.first_audio:
            self.first_audio = True
            print(f"  first audio byte {self._since(self.reply_mark)}", flush=True)
        self.sink.push(pcm16)

    async def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "speech_start":
            self.sink.stop()  # barge-in: the user talks over the reply
        elif kind == "transcript" and event.get("final"):
            print(f"you: {event.get('text', '')}", flush=True)
        elif kind == "no_speech":
            print("(no words heard)", flush=True)
        elif kind == "reply":
            self.on_reply(event)
        elif kind == "audio_start":
            self.speaking = True
            self.sink.begin(int(event["sample_rate"]))
        elif kind == "audio_end":
            self.speaking = False
            if event.get("interrupted"):
                self.sink.stop()
                print("  (reply interrupted)", flush=True)
        elif kind == "error":
            self.errors += 1
            print(f"error from the server: {event.get('message')}", file=sys.stderr, flush=True)

    def on_reply(self, event: dict[str, Any]) -> None:
        self.replies += 1
        self.checking = False
        self.first_audio = False
        print(f"assistant: {event.get('reply', '')}", flush=True)
        timings = event.get("timings") or {}
        if timings:
            shown = ", ".join(f"{name.removesuffix('_ms')} {ms}" for name, ms in timings.items())
            print(f"  server timings (ms): {shown}", flush=True)
        self.reply_mark = self.mark
        print(f"  reply {self._since(self.mark)}", flush=True)
        if (event.get("data") or {}).get("require_password"):
            self.asking = True  # asked aside, so that the question's audio plays meanwhile
            self._asking = asyncio.create_task(self.ask_password())

    async def ask_password(self) -> None:
        password = await asyncio.to_thread(read_password, self.password_env)
        if password:
            await self.socket.send(json.dumps({"type": "password", "password": password}))
            self.mark = (time.monotonic(), "the password")
            self.checking = True
        else:
            print("No password given: the transfer is not confirmed.", flush=True)
        self.asking = False
        self.last_event = time.monotonic()

    @staticmethod
    def _since(mark: tuple[float, str]) -> str:
        instant, name = mark
        return f"{(time.monotonic() - instant) * 1000:.0f} ms after {name}"

    def finished(self) -> bool:
        """A file run is over: answered, nothing playing or pending, and quiet for a while."""
        quiet = time.monotonic() - self.last_event >= QUIET_S
        busy = self.speaking or self.asking or self.checking
        return self.replies > 0 and not busy and quiet


async def converse(args: argparse.Namespace) -> int:
    need_input, need_output = args.input_wav is None, args.output_wav is None
    devices = open_sounddevice(need_input, need_output) if need_input or need_output else None
    frames = None if need_input else wav_frames(args.input_wav)
    sink = Speaker(devices) if devices and need_output else WavRecorder(args.output_wav)
    url = voice_url(args.url, args.user_id, args.token)
    try:
        async with connect(url, max_size=None) as socket:
            ready = json.loads(await socket.recv())
            if ready.get("type") != "ready":
                print(f"error from the server: {ready.get('message')}", file=sys.stderr)
                return 1
            print(f"connected to {args.url} (session {ready.get('session_id')})", flush=True)
            client = Client(socket, sink, args.password_env)
            receiving = asyncio.create_task(client.receive())
            if frames is None:
                assert devices is not None  # no --input-wav: the microphone was opened
                print("listening: speak now (Ctrl-C to quit)", flush=True)
                sending = asyncio.create_task(client.send_microphone(Microphone(devices)))
                done, _ = await asyncio.wait(
                    [sending, receiving], return_when=asyncio.FIRST_COMPLETED
                )
                sending.cancel()
                for task in done:
                    task.result()  # a microphone failure or an abnormal close raises here
                print("the server closed the connection", file=sys.stderr)
                return 1
            await client.send_file(frames)
            return await _wait_for_replies(client, receiving, args.timeout)
    except (OSError, InvalidURI, InvalidHandshake) as error:
        print(f"cannot connect to {args.url}: {error}", file=sys.stderr)
        return 1
    except ConnectionClosed as closed:
        print(f"the server closed the connection ({closed})", file=sys.stderr)
        return 1
    finally:
        sink.close()


async def _wait_for_replies(client: Client, receiving: asyncio.Task[None], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while not client.finished():
        if receiving.done():
            receiving.result()  # raises ConnectionClosed if the server hung up
            print("the server closed the connection", file=sys.stderr)
            return 1
        if time.monotonic() > deadline and not client.asking:
            print(f"no reply within {timeout:.0f} s", file=sys.stderr)
            return 1
        await asyncio.sleep(0.1)
    await client.sink.drain()
    receiving.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await receiving
    return 1 if client.errors else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m voice.mic_client", description="Talk to the assistant over /ws/voice."
    )
    parser.add_argument("--url", default="ws://127.0.0.1:8000/ws/voice")
    parser.add_argument("--user-id", type=int, default=1)
    parser.add_argument("--token", help="access token, once the server asks for one")
    parser.add_argument("--input-wav", type=Path, help="send this WAV file instead of the mic")
    parser.add_argument("--output-wav", type=Path, help="write the replies' audio here")
    parser.add_argument(
        "--password-env", metavar="VAR", help="take the password from this environment variable"
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for a reply (file runs)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(converse(args))
    except CannotStart as error:
        print(f"mic_client: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
