"""PCM16, resampling, μ-law and WAV files: the formats at the voice path's edges."""

import warnings
from pathlib import Path

import numpy as np
import pytest

from voice.audio import (
    AudioFormatError,
    StreamResampler,
    float_to_pcm16,
    mulaw_decode,
    mulaw_encode,
    pcm16_to_float,
    read_wav,
    resample,
    write_wav,
)

with warnings.catch_warnings():  # deprecated, but still Python 3.11's G.711 reference codec
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop


def tone(hz: float, seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[np.argmax(spectrum)])


def test_pcm16_round_trip_and_clipping() -> None:
    samples = np.array([0.0, 0.5, -0.5, 1.5, -2.0, np.nan], dtype=np.float32)
    back = pcm16_to_float(float_to_pcm16(samples))
    assert np.allclose(back[:3], [0.0, 0.5, -0.5], atol=1e-4)
    assert back[3] == pytest.approx(32767 / 32768) and back[4] == -1.0 and back[5] == 0.0


def test_an_odd_byte_count_is_not_pcm16() -> None:
    with pytest.raises(AudioFormatError):
        pcm16_to_float(b"\x00\x01\x02")


@pytest.mark.parametrize(("source", "target"), [(22050, 16000), (16000, 8000), (8000, 16000)])
def test_resampling_keeps_pitch_and_duration(source: int, target: int) -> None:
    out = resample(tone(440, 1.0, source), source, target)
    assert out.size == pytest.approx(target, abs=2)
    assert dominant_hz(out, target) == pytest.approx(440, abs=2)


def test_resampling_removes_what_the_new_rate_cannot_hold() -> None:
    """A 6 kHz tone has no place at 8 kHz (Nyquist 4 kHz): it must not fold back as a 2 kHz tone."""
    out = resample(tone(6000, 1.0, 16000), 16000, 8000)
    assert np.sqrt(np.mean(out**2)) < 0.01


def test_a_stream_resampled_in_chunks_equals_the_whole() -> None:
    signal = tone(300, 1.0, 22050)
    stream = StreamResampler(22050, 16000)
    pieces = [stream.push(chunk) for chunk in np.array_split(signal, 7)]
    joined = np.concatenate([*pieces, stream.push(np.zeros(0, np.float32), last=True)])
    whole = resample(signal, 22050, 16000)
    assert joined.size == pytest.approx(whole.size, abs=2)
    middle = slice(1000, 15000)
    assert np.max(np.abs(joined[middle] - whole[middle])) < 0.01  # no clicks at the joins


def test_mulaw_matches_the_g711_reference() -> None:
    samples = np.linspace(-1, 1, 4001, dtype=np.float32)
    pcm = float_to_pcm16(samples)
    assert mulaw_encode(samples) == audioop.lin2ulaw(pcm, 2)
    codes = bytes(range(256))
    reference = np.frombuffer(audioop.ulaw2lin(codes, 2), dtype="<i2") / 32768.0
    assert np.array_equal(mulaw_decode(codes), reference.astype(np.float32))


def test_mulaw_round_trip_keeps_speech_level_audio_close() -> None:
    speech_like = tone(300, 0.5, 8000)
    back = mulaw_decode(mulaw_encode(speech_like))
    assert np.max(np.abs(back - speech_like)) < 0.02


def test_wav_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    write_wav(path, tone(440, 0.25, 16000), 16000)
    samples, rate = read_wav(path)
    assert rate == 16000 and samples.size == 4000
    assert dominant_hz(samples, rate) == pytest.approx(440, abs=4)


def test_a_file_that_is_not_a_wav_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "not.wav"
    path.write_bytes(b"RIFF but not really")
    with pytest.raises(AudioFormatError):
        read_wav(path)
