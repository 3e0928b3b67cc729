"""A private PulseAudio sound server for a machine with no sound card.

Debian's `pulseaudio` runs as a daemon of this test run with its own runtime directory:
`module-pipe-source` is the microphone (a FIFO that `Microphone` writes 16 kHz PCM into
at real time, silence between utterances, as an open microphone hears), and
`module-null-sink` is the speaker (what is played to it is recorded from its monitor by
`parec`). PortAudio reaches it through ALSA's `pulse` plugin (`libasound2-plugins`), so
the microphone client opens real devices through its real audio stack; only the sound
card is missing.
"""

import fcntl
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from voice.audio import PIPELINE_RATE, float_to_pcm16, pcm16_to_float

CHUNK_S = 0.02  # the microphone is written and the speaker read in 20 ms pieces
CHUNK_BYTES = int(PIPELINE_RATE * CHUNK_S) * 2
PAREC_FLAGS = ("--channels=1", "--latency-msec=20", "--raw")
# 512 ms of microphone audio: room for PulseAudio to fall behind on a loaded machine, and
# little enough that sound written while nobody reads it is not heard much later.
PIPE_BYTES = 16384

CONFIG = """\
load-module module-native-protocol-unix socket={socket} auth-anonymous=1
load-module module-null-sink sink_name=speaker rate=16000 channels=1
load-module module-pipe-source source_name=mic file={fifo} format=s16le rate=16000 channels=1
set-default-sink speaker
set-default-source mic
"""


def missing_programs() -> list[str]:
    return [name for name in ("pulseaudio", "parec") if shutil.which(name) is None]


class Microphone:
    """Writes the FIFO at real time, forever: queued speech, else silence."""

    def __init__(self, fifo: Path) -> None:
        self._fifo = fifo
        self._queue: list[tuple[bytes, threading.Event]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def say(self, audio: np.ndarray) -> tuple[float, float]:
        """Speaks 16 kHz float samples into the microphone; returns when they are written,
        with the monotonic instants their first and last samples were written."""
        done = threading.Event()
        with self._lock:
            self._queue.append((float_to_pcm16(audio), done))
        done.wait()
        ended = time.monotonic()
        return ended - audio.size / PIPELINE_RATE, ended

    def _run(self) -> None:
        pending, finished = b"", threading.Event()
        pipe = -1
        due = time.monotonic()
        while not self._stop.is_set():
            if not pending:
                with self._lock:
                    if self._queue:
                        pending, finished = self._queue.pop(0)
            chunk, pending = pending[:CHUNK_BYTES], pending[CHUNK_BYTES:]
            pipe = self._write(pipe, chunk.ljust(CHUNK_BYTES, b"\0"))
            if chunk and not pending:
                finished.set()
            # Late (this thread was not scheduled in time): go on from now rather than write
            # the missed chunks in a burst, which would overflow the pipe and lose speech.
            due = max(due + CHUNK_S, time.monotonic())
            time.sleep(max(0.0, due - time.monotonic()))
        if pipe >= 0:
            os.close(pipe)

    def _write(self, pipe: int, chunk: bytes) -> int:
        """Writes without waiting, as a microphone does: what nobody reads is lost. The
        pipe holds at most PIPE_BYTES, so that sound written while no program records is
        not heard late by the next one."""
        try:
            if pipe < 0:
                pipe = os.open(self._fifo, os.O_WRONLY | os.O_NONBLOCK)
                fcntl.fcntl(pipe, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
            os.write(pipe, chunk)
        except BlockingIOError:
            pass  # full: nobody is recording
        except OSError:  # no reader (ENXIO) or the reader went away (EPIPE): open again
            if pipe >= 0:
                os.close(pipe)
            pipe = -1
        return pipe

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


@dataclass
class Recording:
    """What the speaker played, in 20 ms chunks with the instant each arrived."""

    chunks: list[tuple[float, bytes]] = field(default_factory=list)

    def audio(self, since: float = 0.0, until: float = float("inf")) -> np.ndarray:
        pieces = [pcm for at, pcm in list(self.chunks) if since <= at < until]
        return pcm16_to_float(b"".join(pieces)) if pieces else np.zeros(0, np.float32)

    def loud(self, since: float = 0.0, until: float = float("inf")) -> list[float]:
        """The instants of chunks with sound in them (above -40 dBFS)."""
        return [
            at
            for at, pcm in list(self.chunks)
            if since <= at < until and np.sqrt(np.mean(np.square(pcm16_to_float(pcm)))) > 0.01
        ]


@dataclass
class SoundServer:
    env: dict[str, str]  # the environment a client process reaches the server with
    microphone: Microphone

    @contextmanager
    def recording(self) -> Iterator[Recording]:
        """Records the speaker's monitor while the block runs."""
        recording = Recording()
        parec = subprocess.Popen(
            [*("parec", "-d", "speaker.monitor", "--format=s16le", "--rate=16000"), *PAREC_FLAGS],
            env=self.env,
            stdout=subprocess.PIPE,
        )
        assert parec.stdout is not None
        stream = parec.stdout

        def read() -> None:
            while chunk := stream.read(CHUNK_BYTES):
                recording.chunks.append((time.monotonic(), chunk))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            yield recording
        finally:
            parec.terminate()
            parec.wait(timeout=5)
            reader.join(timeout=5)


@contextmanager
def sound_server(directory: Path) -> Iterator[SoundServer]:
    """Starts the daemon in `directory`, and stops it at the end."""
    socket, fifo = directory / "native", directory / "mic.fifo"
    for folder in ("runtime", "home"):
        (directory / folder).mkdir(parents=True)
    config = directory / "default.pa"
    config.write_text(CONFIG.format(socket=socket, fifo=fifo))
    env = {
        **os.environ,
        "XDG_RUNTIME_DIR": str(directory / "runtime"),
        "HOME": str(directory / "home"),
        "PULSE_SERVER": f"unix:{socket}",
    }
    log = f"--log-target=file:{directory / 'pulseaudio.log'}"
    daemon = subprocess.Popen(
        [*("pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "-F", str(config)), log],
        env=env,
    )
    deadline = time.monotonic() + 20
    while not (socket.exists() and fifo.exists()):
        assert daemon.poll() is None, (directory / "pulseaudio.log").read_text()
        assert time.monotonic() < deadline, "PulseAudio did not start in 20 s"
        time.sleep(0.05)
    microphone = Microphone(fifo)
    try:
        yield SoundServer(env, microphone)
    finally:
        microphone.close()
        daemon.terminate()
        daemon.wait(timeout=10)
