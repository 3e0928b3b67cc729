"""The microphone client's sound devices, through PortAudio (`sounddevice`).

The microphone gives 100 ms frames of 16 kHz PCM16 and a level for the meter; the speaker
plays reply audio from a queue that barge-in empties, and says when the first sample of a
reply is due at the device (PortAudio's DAC time), which is what the client's latency
figure ends at. Devices are named on the command line by index or by part of their name,
as `--list-devices` shows them.
"""

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

import numpy as np

from voice.audio import PIPELINE_RATE, pcm16_to_float

FRAME_SAMPLES = PIPELINE_RATE // 10  # 100 ms
FRAME_S = FRAME_SAMPLES / PIPELINE_RATE


class CannotStart(Exception):
    """Something this run needs is missing or unusable (PortAudio, a sound card, a device,
    a readable WAV file); the message says what to do."""


def load_sounddevice() -> ModuleType:
    """The `sounddevice` module, once PortAudio is found."""
    try:
        import sounddevice  # PortAudio is loaded here; only runs that use a device need it
    except OSError as error:
        raise CannotStart(
            f"PortAudio is not available ({error}); install it (Debian: libportaudio2), "
            "or use --input-wav FILE and --output-wav FILE"
        ) from error
    return sounddevice


def pick_device(sounddevice: ModuleType, kind: str, wanted: str | None) -> int | None:
    """The index of the `kind` ("input" or "output") device `wanted` names (an index, or
    a part of one device's name), or None for the default device; checks it exists."""
    instead = "--input-wav FILE" if kind == "input" else "--output-wav FILE"
    channels = f"max_{kind}_channels"
    if wanted is None:
        try:
            sounddevice.query_devices(kind=kind)
        except (sounddevice.PortAudioError, ValueError) as error:
            raise CannotStart(
                f"no audio {kind} device found ({error}); use {instead} instead"
            ) from error
        return None
    devices = list(sounddevice.query_devices())
    if wanted.isdigit():
        index = int(wanted)
        if index < len(devices) and devices[index][channels] > 0:
            return index
        raise CannotStart(f"there is no {kind} device {index}; --list-devices shows them")
    matches = [
        index
        for index, device in enumerate(devices)
        if device[channels] > 0 and wanted.lower() in device["name"].lower()
    ]
    exact = [index for index in matches if devices[index]["name"].lower() == wanted.lower()]
    if len(exact) == 1 or len(matches) == 1:
        return (exact or matches)[0]
    if not matches:
        raise CannotStart(f"no {kind} device is named {wanted!r}; --list-devices shows them")
    names = ", ".join(repr(devices[index]["name"]) for index in matches)
    raise CannotStart(f"{wanted!r} names several {kind} devices ({names}); give an index")


def device_list(sounddevice: ModuleType) -> str:
    """The devices as `--list-devices` prints them: index, name, channels, defaults."""
    inputs, outputs = (_default_index(sounddevice, kind) for kind in ("input", "output"))
    lines = []
    for index, device in enumerate(sounddevice.query_devices()):
        roles = [
            role
            for role, default, channels in (
                ("default input", inputs, device["max_input_channels"]),
                ("default output", outputs, device["max_output_channels"]),
            )
            if index == default and channels > 0
        ]
        marks = f"  ({', '.join(roles)})" if roles else ""
        lines.append(
            f"{index:3d}  {device['name']}  in {device['max_input_channels']}, "
            f"out {device['max_output_channels']}{marks}"
        )
    return "\n".join(lines) if lines else "no audio devices found"


def _default_index(sounddevice: ModuleType, kind: str) -> int | None:
    try:
        return int(sounddevice.query_devices(kind=kind)["index"])
    except (sounddevice.PortAudioError, ValueError):
        return None


def level_dbfs(pcm16: bytes) -> float:
    """Root-mean-square level of a PCM16 frame, in dB of full scale."""
    rms = float(np.sqrt(np.mean(np.square(pcm16_to_float(pcm16))))) if pcm16 else 0.0
    return 20 * np.log10(max(rms, 1e-10))


def _opened(kind: str, device: int | None, open_stream: Any) -> Any:
    """A started stream, or CannotStart saying the device is busy or unusable."""
    try:
        stream = open_stream()
        stream.start()
    except Exception as error:  # PortAudioError, or ValueError for settings it refuses
        name = "the default" if device is None else f"{kind} device {device}"
        raise CannotStart(
            f"cannot open {name} {kind} ({error}): is it busy or unplugged? "
            "--list-devices shows the devices"
        ) from error
    return stream


class Microphone:
    """An input device as 100 ms PCM16 frames."""

    def __init__(self, sounddevice: ModuleType, device: int | None) -> None:
        self._loop = asyncio.get_running_loop()
        self._frames: asyncio.Queue[bytes] = asyncio.Queue()
        self._stream = _opened(
            "input",
            device,
            lambda: sounddevice.RawInputStream(
                samplerate=PIPELINE_RATE,
                device=device,
                channels=1,
                dtype="int16",
                blocksize=FRAME_SAMPLES,
                callback=self._captured,
            ),
        )

    def _captured(self, data: Any, frames: int, at: Any, status: Any) -> None:
        self._loop.call_soon_threadsafe(self._frames.put_nowait, bytes(data))

    async def frames(self) -> AsyncIterator[bytes]:
        try:
            while True:
                yield await self._frames.get()
        finally:
            self._stream.stop()
            self._stream.close()


class Speaker:
    """Plays reply audio on an output device; `stop()` drops what is queued.

    `first_played` is the monotonic instant the first sample of the current reply is due
    at the device: when the callback that carries it runs, plus PortAudio's estimate of
    how long the sample takes from there to the device's converter."""

    def __init__(self, sounddevice: ModuleType, device: int | None) -> None:
        self._sounddevice = sounddevice
        self._device = device
        self._stream: Any = None
        self._rate = 0
        self._queued = bytearray()
        self._lock = threading.Lock()
        self.first_played: float | None = None

    def begin(self, sample_rate: int) -> None:
        self.first_played = None
        if sample_rate != self._rate:
            self.close()
            self._stream = _opened(
                "output",
                self._device,
                lambda: self._sounddevice.RawOutputStream(
                    samplerate=sample_rate,
                    device=self._device,
                    channels=1,
                    dtype="int16",
                    callback=self._fill,
                ),
            )
            self._rate = sample_rate

    def _fill(self, out: Any, frames: int, at: Any, status: Any) -> None:
        wanted = len(out)
        with self._lock:
            chunk = bytes(self._queued[:wanted])
            del self._queued[:wanted]
        if chunk and self.first_played is None:
            ahead = max(0.0, at.outputBufferDacTime - at.currentTime)
            self.first_played = time.monotonic() + ahead
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
