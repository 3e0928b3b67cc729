"""The microphone client's files in place of devices: a WAV file as the microphone's
frames, and the replies' audio collected into a WAV file as a speaker would have played it."""

from pathlib import Path

import numpy as np

from voice.audio import (
    PIPELINE_RATE,
    AudioFormatError,
    float_to_pcm16,
    pcm16_to_float,
    read_wav,
    resample,
    write_wav,
)
from voice.sound_devices import FRAME_SAMPLES, CannotStart


def wav_frames(path: Path) -> list[bytes]:
    """A WAV file as 100 ms frames of 16 kHz PCM16."""
    try:
        samples, rate = read_wav(path)
    except (OSError, AudioFormatError) as error:
        raise CannotStart(f"cannot read {path}: {error}") from error
    pcm = float_to_pcm16(resample(samples, rate, PIPELINE_RATE))
    step = 2 * FRAME_SAMPLES
    return [pcm[start : start + step] for start in range(0, len(pcm), step)]


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
