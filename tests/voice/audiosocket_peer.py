"""A test's Asterisk: speaks AudioSocket over a real TCP connection, as app_audiosocket does.

It frames its own messages (struct, not voice.audiosocket, so that a framing mistake in
the server is not mirrored here), sends 8 kHz audio in 20 ms frames at real time, and
records every message the server sends with the moment it arrived.
"""

import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voice.audio import PHONE_RATE as RATE
from voice.audio import float_to_pcm16, read_wav, resample

FRAME_S = 0.02
FRAME_BYTES = 320
AUDIBLE = 0.01
HANGUP, UUID, DTMF, AUDIO, ERROR = 0x00, 0x01, 0x03, 0x10, 0xFF


def message(kind: int, payload: bytes = b"") -> bytes:
    return struct.pack(">BH", kind, len(payload)) + payload


def phone_audio(wav: Path) -> np.ndarray:
    """A WAV file's samples at the telephone's 8 kHz."""
    samples, rate = read_wav(wav)
    return resample(samples, rate, RATE)


@dataclass
class Received:
    at: float  # time.monotonic() on arrival
    kind: int
    payload: bytes


class AudioSocketPeer:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.received: list[Received] = []
        self.closed = threading.Event()  # the server closed the connection
        self._arrived = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def __enter__(self) -> "AudioSocketPeer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
        self._reader.join(timeout=5)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def hello(self, call_id: uuid.UUID) -> None:
        self.send(message(UUID, call_id.bytes))

    def say(self, samples: np.ndarray, silence_after_s: float = 1.0) -> float:
        """Speech then silence in 20 ms frames at real time; when its last audible sample
        was sent (no reply can start before: the endpointer waits for silence)."""
        tail = np.zeros(int(RATE * silence_after_s), dtype=np.float32)
        pcm = float_to_pcm16(np.concatenate([samples, tail]))
        started = time.monotonic()
        for index, start in enumerate(range(0, len(pcm), FRAME_BYTES)):
            time.sleep(max(0.0, started + index * FRAME_S - time.monotonic()))
            self.send(message(AUDIO, pcm[start : start + FRAME_BYTES]))
        audible = np.nonzero(np.abs(samples) > AUDIBLE)[0]
        return started + (audible[-1] + 1 if audible.size else 0) / RATE

    def keys(self, keys: str) -> None:
        """Keys pressed one after the other, as a caller types them."""
        for key in keys:
            self.send(message(DTMF, key.encode()))
            time.sleep(0.15)

    def hang_up(self) -> None:
        self.send(message(HANGUP))

    def audio_frames(self, since: float = 0.0) -> list[Received]:
        with self._arrived:
            return [r for r in self.received if r.kind == AUDIO and r.at >= since]

    def kinds(self) -> list[int]:
        with self._arrived:
            return [r.kind for r in self.received]

    def reply(self, since: float, timeout: float = 90.0, gap_s: float = 5.0) -> list[Received]:
        """The audio frames of the first reply after `since`: from its first frame until
        none has come for `gap_s` (or the connection closed). On a busy machine a reply
        can pause seconds between its pieces of speech."""
        deadline = time.monotonic() + timeout
        while not self.audio_frames(since):
            assert time.monotonic() < deadline, f"no reply audio in {timeout} s"
            assert not self.closed.is_set(), f"the server hung up: {self.kinds()}"
            self._wait(0.05)
        while not self.closed.is_set():
            frames = self.audio_frames(since)
            if time.monotonic() - frames[-1].at > gap_s:
                break
            assert time.monotonic() < deadline, "the reply did not end"
            self._wait(0.05)
        return self.audio_frames(since)

    def wait_closed(self, timeout: float = 30.0) -> bool:
        return self.closed.wait(timeout)

    def _wait(self, seconds: float) -> None:
        with self._arrived:
            self._arrived.wait(seconds)

    def _read(self) -> None:
        buffer = b""
        try:
            while chunk := self.sock.recv(65536):
                buffer += chunk
                while len(buffer) >= 3:
                    kind, length = struct.unpack(">BH", buffer[:3])
                    if len(buffer) < 3 + length:
                        break
                    with self._arrived:
                        self.received.append(
                            Received(time.monotonic(), kind, buffer[3 : 3 + length])
                        )
                        self._arrived.notify_all()
                    buffer = buffer[3 + length :]
        except OSError:
            pass
        self.closed.set()
        with self._arrived:
            self._arrived.notify_all()


def samples_of(frames: list[Received]) -> np.ndarray:
    pcm = b"".join(frame.payload for frame in frames)
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
