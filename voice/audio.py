"""Audio formats at the edges: sample rates, PCM16 bytes, float samples, resampling, μ-law,
WAV files.

Inside the voice path audio is a float32 NumPy array in [-1, 1]; on the wire it is PCM
signed 16-bit little-endian mono (WebSocket, widget, microphone client) or G.711 μ-law
(telephony).

The sample rates are defined here and nowhere else: the pipeline's (what the VAD and the
speech-to-text hear, so what the browser and the microphone client send) and the
telephone's. The reply's rate is the text-to-speech voice's own (`TextToSpeech.sample_rate`,
from the voice model's config).
"""

import wave
from pathlib import Path

import numpy as np
import soxr

PIPELINE_RATE = 16_000  # Hz: Silero VAD and whisper take 16 kHz; every channel's input is made so
PHONE_RATE = 8_000  # Hz: telephony (G.711 μ-law on Twilio, signed linear on AudioSocket)

PCM16_SCALE = 32768.0
MULAW_BIAS = 33  # on 14-bit magnitudes
MULAW_CLIP = 8159
DECODE_BIAS = 0x84  # the same bias on 16-bit samples


class AudioFormatError(ValueError):
    """Bytes that are not the audio format they claim to be."""


def pcm16_to_float(frame: bytes) -> np.ndarray:
    """Samples of a PCM16LE frame as float32 in [-1, 1); an odd byte count is refused."""
    if len(frame) % 2:
        raise AudioFormatError(f"a PCM16 frame has an even byte count, got {len(frame)}")
    return np.frombuffer(frame, dtype="<i2").astype(np.float32) / PCM16_SCALE


def float_to_pcm16(samples: np.ndarray) -> bytes:
    """PCM16LE bytes, clipping anything outside [-1, 1] (NaN becomes silence)."""
    clean = np.nan_to_num(np.asarray(samples, dtype=np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    scaled = np.clip(clean * PCM16_SCALE, -PCM16_SCALE, PCM16_SCALE - 1)
    return scaled.astype("<i2").tobytes()


def resample(samples: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """Band-limited resampling (libsoxr, high quality); the same array when rates match."""
    samples = np.asarray(samples, dtype=np.float32)
    if from_hz == to_hz or samples.size == 0:
        return samples
    return soxr.resample(samples, from_hz, to_hz, quality="HQ").astype(np.float32)


class StreamResampler:
    """Resamples a stream chunk by chunk without clicks at the chunk joins."""

    def __init__(self, from_hz: int, to_hz: int) -> None:
        self.passthrough = from_hz == to_hz
        self._stream = None if self.passthrough else soxr.ResampleStream(from_hz, to_hz, 1)

    def push(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        samples = np.asarray(samples, dtype=np.float32)
        if self._stream is None:
            return samples
        return self._stream.resample_chunk(samples, last=last).astype(np.float32)


class LinearUpsampler:
    """Doubles the sample rate by linear interpolation, chunk by chunk: each sample is
    preceded by the midpoint between it and the one before (no clicks at chunk joins).

    No anti-imaging filter, on purpose: the mirror image of the 0-4 kHz band it leaves
    above 4 kHz may look, to whisper, more like the wideband speech it was trained on
    than an empty band does. On recorded 8 kHz speech whisper's word error rate was
    lower than after band-limited resampling, on espeak-ng's voices higher
    (bench/bench_phone.py; phone.upsampler chooses).
    """

    def __init__(self) -> None:
        self._last: float | None = None

    def push(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        samples = np.asarray(samples, dtype=np.float32)
        if samples.size == 0:
            return samples
        before = samples[0] if self._last is None else self._last
        previous = np.concatenate([np.array([before], dtype=np.float32), samples[:-1]])
        self._last = float(samples[-1])
        doubled = np.empty(2 * samples.size, dtype=np.float32)
        doubled[0::2] = (previous + samples) / 2
        doubled[1::2] = samples
        return doubled


def mulaw_encode(samples: np.ndarray) -> bytes:
    """G.711 μ-law bytes of float samples (the telephone codec: 8 bits per sample).

    As ITU-T G.711's reference coder: on 14-bit magnitudes, bias 33, eight segments.
    """
    pcm14 = np.frombuffer(float_to_pcm16(samples), dtype="<i2").astype(np.int32) >> 2
    negative = pcm14 < 0
    mask = np.where(negative, 0x7F, 0xFF)
    magnitude = np.minimum(np.where(negative, -pcm14, pcm14), MULAW_CLIP) + MULAW_BIAS
    segment = np.floor(np.log2(magnitude)).astype(np.int32) - 5
    code = (np.minimum(segment, 7) << 4) | ((magnitude >> (segment + 1)) & 0x0F)
    code = np.where(segment >= 8, 0x7F, code)
    return ((code ^ mask) & 0xFF).astype(np.uint8).tobytes()


def mulaw_decode(data: bytes) -> np.ndarray:
    """Float samples of G.711 μ-law bytes."""
    codes = ~np.frombuffer(data, dtype=np.uint8).astype(np.int32) & 0xFF
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + DECODE_BIAS) << exponent) - DECODE_BIAS
    pcm = np.where(codes & 0x80, -magnitude, magnitude)
    return pcm.astype(np.float32) / PCM16_SCALE


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Mono float samples and the sample rate of a PCM16 WAV file (channels are averaged)."""
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getsampwidth() != 2:
                raise AudioFormatError(f"{path}: only 16-bit PCM WAV files are read")
            channels, rate = wav.getnchannels(), wav.getframerate()
            samples = pcm16_to_float(wav.readframes(wav.getnframes()))
    except (wave.Error, EOFError) as error:
        raise AudioFormatError(f"{path}: not a readable WAV file: {error}") from error
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return samples, rate


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """A mono PCM16 WAV file."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(float_to_pcm16(samples))
