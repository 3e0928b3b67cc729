"""A test's side of /ws/voice: sends real audio frames, collects events and reply audio."""

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from websockets.sync.client import ClientConnection, connect

from voice.audio import PIPELINE_RATE as SAMPLE_RATE
from voice.audio import float_to_pcm16, read_wav, resample

FRAME_S = 0.1


class VoiceClient:
    def __init__(self, url: str) -> None:
        self.url = url
        self.events: list[dict[str, Any]] = []
        self.arrived: list[float] = []  # time.monotonic() of each event's arrival
        self.audio = bytearray()
        self._speech: list[bytes] = []  # frames an open microphone sends next
        self.speech_sent_at: float | None = None  # the first frame of the last speak(), sent
        self._lock = threading.Lock()

    def __enter__(self) -> "VoiceClient":
        self._connection = connect(self.url, max_size=None, open_timeout=10)
        self.socket: ClientConnection = self._connection.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._connection.__exit__(*exc)

    def send(self, message: dict[str, Any]) -> None:
        self.socket.send(json.dumps(message))

    def send_audio(self, samples: np.ndarray, realtime: bool = False) -> None:
        """16 kHz samples in 100 ms frames; paced like a microphone when `realtime`."""
        pcm = float_to_pcm16(samples)
        step = int(SAMPLE_RATE * FRAME_S) * 2
        for start in range(0, len(pcm), step):
            self.socket.send(pcm[start : start + step])
            if realtime:
                time.sleep(FRAME_S)

    def say(self, wav: Path, silence_after_s: float = 1.0) -> None:
        """The WAV's speech, then silence long enough for the utterance to end."""
        samples, rate = read_wav(wav)
        tail = np.zeros(int(SAMPLE_RATE * silence_after_s), dtype=np.float32)
        self.send_audio(np.concatenate([resample(samples, rate, SAMPLE_RATE), tail]))

    @contextmanager
    def open_microphone(self) -> Iterator[None]:
        """A microphone left open, as the widget's: a 100 ms frame on the clock, silence
        unless `speak()` queued speech."""
        stopped = threading.Event()
        silence = float_to_pcm16(np.zeros(int(SAMPLE_RATE * FRAME_S), dtype=np.float32))

        def run() -> None:
            next_at = time.monotonic()
            while not stopped.is_set():
                with self._lock:
                    frame = self._speech.pop(0) if self._speech else silence
                    first = frame is not silence and self.speech_sent_at is None
                self.socket.send(frame)
                if first:
                    self.speech_sent_at = time.monotonic()
                next_at += FRAME_S
                time.sleep(max(0.0, next_at - time.monotonic()))

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stopped.set()
            thread.join(timeout=5)

    def speak(self, samples: np.ndarray) -> None:
        """Put 16 kHz speech into the open microphone, to be sent from its next frame on."""
        pcm, step = float_to_pcm16(samples), int(SAMPLE_RATE * FRAME_S) * 2
        pcm += bytes(-len(pcm) % step)
        with self._lock:
            self._speech.extend(pcm[start : start + step] for start in range(0, len(pcm), step))
            self.speech_sent_at = None

    def spoken(self) -> float:
        """Once the microphone has sent all the speech given to it: the time.monotonic()."""
        while True:
            with self._lock:
                if not self._speech:
                    return time.monotonic()
            time.sleep(FRAME_S / 4)

    def receive(self, timeout: float) -> dict[str, Any] | None:
        """The next event (reply audio is collected on the way); None if none came in time."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                frame = self.socket.recv(timeout=left)
            except TimeoutError:
                return None
            if isinstance(frame, bytes):
                self.audio += frame
                continue
            event = json.loads(frame)
            self.events.append(event)
            self.arrived.append(time.monotonic())
            return event
        return None

    def until(self, kind: str, timeout: float = 60) -> dict[str, Any]:
        """Events up to the first of this type, which is returned."""
        deadline = time.monotonic() + timeout
        while (event := self.receive(deadline - time.monotonic())) is not None:
            if event["type"] == kind:
                return event
        raise AssertionError(f"no {kind!r} event in {timeout} s; got {self.events}")

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["type"] == kind]

    def reply_samples(self) -> np.ndarray:
        return np.frombuffer(bytes(self.audio), dtype="<i2").astype(np.float32) / 32768.0
