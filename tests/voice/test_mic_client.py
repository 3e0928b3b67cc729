"""`python -m voice.mic_client` as a user runs it, against a real server with the voice on.

There is no sound card here: `--input-wav` stands in for the microphone (the file is
streamed in real time) and `--output-wav` for the speaker.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.voice.conftest import VoiceServer
from tests.voice.spoken import spoken_wav
from voice.audio import read_wav

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "password123"  # every demo user's (data/demo_users.yaml)
TRANSFER = "send five hundred rupees to mom"
SPEED = 130  # espeak-ng words a minute: clear enough for whisper tiny.en


def mic_client(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "voice.mic_client", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def talk(
    server: VoiceServer, wav: Path, output: Path, stdin: str = "", user_id: int = 1
) -> subprocess.CompletedProcess[str]:
    url = server.socket_url().split("?")[0]
    return mic_client(
        *("--url", url, "--user-id", str(user_id), "--input-wav", str(wav)),
        *("--output-wav", str(output)),
        stdin=stdin,
    )


def test_spoken_balance_question_is_answered_and_the_reply_recorded(
    voice_server: VoiceServer, tmp_path: Path
) -> None:
    wav = spoken_wav("check my balance", tmp_path / "balance.wav", speed=SPEED)
    result = talk(voice_server, wav, tmp_path / "reply.wav")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "assistant: Your current account balance is" in result.stdout
    assert "first audio byte" in result.stdout and "server timings (ms)" in result.stdout
    speech, rate = read_wav(tmp_path / "reply.wav")
    assert rate == 22050 and speech.size / rate > 1.5
    assert np.sqrt(np.mean(np.square(speech))) > 0.02  # audible speech, not silence


def test_spoken_transfer_takes_the_password_from_stdin_and_moves_money_once(
    voice_server: VoiceServer, tmp_path: Path
) -> None:
    before = voice_server.balance(1)
    wav = spoken_wav(TRANSFER, tmp_path / "send.wav", speed=SPEED)
    result = talk(voice_server, wav, tmp_path / "reply.wav", stdin=f"{PASSWORD}\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Please confirm with your password" in result.stdout
    assert "assistant: Successfully transferred 500 rupees to Mom." in result.stdout
    assert PASSWORD not in result.stdout + result.stderr
    assert voice_server.balance(1) == before - 500_00


def test_no_password_on_stdin_sends_nothing(voice_server: VoiceServer, tmp_path: Path) -> None:
    before = voice_server.balance(1)
    wav = spoken_wav(TRANSFER, tmp_path / "send.wav", speed=SPEED)
    result = talk(voice_server, wav, tmp_path / "reply.wav", stdin="")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No password given: the transfer is not confirmed." in result.stdout
    assert voice_server.balance(1) == before


def test_unknown_user_is_refused_with_the_servers_message(
    voice_server: VoiceServer, tmp_path: Path
) -> None:
    wav = spoken_wav("check my balance", tmp_path / "balance.wav", speed=SPEED)
    result = talk(voice_server, wav, tmp_path / "reply.wav", user_id=999)
    assert result.returncode == 3
    assert "the server refused the connection: User not found" in result.stderr


def has_microphone() -> bool:
    try:
        import sounddevice
    except OSError:
        return False  # no PortAudio
    try:
        sounddevice.query_devices(kind="input")
    except sounddevice.PortAudioError:
        return False
    return True


@pytest.mark.skipif(has_microphone(), reason="this machine has a microphone to record from")
def test_without_a_sound_card_the_client_says_so_and_fails() -> None:
    """This machine has no sound card (CI neither): a run that needs one says so clearly."""
    result = mic_client("--url", "ws://127.0.0.1:9/ws/voice")
    assert result.returncode == 2
    assert "use --input-wav FILE instead" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreadable_wav_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not a wav file")
    result = mic_client("--input-wav", str(broken), "--output-wav", str(tmp_path / "o.wav"))
    assert result.returncode == 2
    assert f"cannot read {broken}" in result.stderr
    assert "Traceback" not in result.stderr
