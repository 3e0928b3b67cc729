"""A test's side of /ws/voice: sends real audio frames, collects events and reply audio."""

import json
import time
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
        self.audio = bytearray()

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
