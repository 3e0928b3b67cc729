"""WS /ws/voice over a real socket, with real speech models and spoken WAV files."""

from collections.abc import Callable

import httpx
import numpy as np
import pytest

from tests.voice.conftest import VoiceServer
from tests.voice.spoken import cached_noise_wav, cached_spoken_wav, words
from tests.voice.voice_client import SAMPLE_RATE, VoiceClient
from voice.audio import read_wav

PASSWORD = "password123"  # every demo user's (data/demo_users.yaml)


def spoken(text: str, voice: str = "en-us") -> object:
    return cached_spoken_wav(text, voice, 150, 50)


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples)))) if samples.size else 0.0


def test_spoken_balance_question_gets_transcript_reply_and_speech(
    voice_server: VoiceServer,
) -> None:
    with VoiceClient(voice_server.socket_url()) as client:
        ready = client.until("ready")
        assert ready["sample_rate"] == SAMPLE_RATE and ready["format"] == "pcm_s16le"
        client.say(spoken("check my balance"))
        transcript = client.until("transcript")
        reply = client.until("reply")
        start = client.until("audio_start")
        end = client.until("audio_end")
    assert transcript["final"] is True
    assert "balance" in words(transcript["text"])
    assert reply["reply"] == "Your current account balance is 10,000 rupees."
    assert reply["page"] == "home" and reply["data"]["balance"] == 10000
    assert set(reply["timings"]) >= {"endpoint_ms", "stt_ms", "assistant_ms", "tts_first_ms"}
    assert start["sample_rate"] == 22050 and end["interrupted"] is False
    speech = client.reply_samples()
    assert speech.size / 22050 > 1.5  # the whole sentence, not a blip
    assert rms(speech) > 0.02  # audible, not silence


def test_transfer_by_voice_with_the_password_message_moves_money_once(
    voice_server: VoiceServer,
) -> None:
    before = voice_server.balance(1), voice_server.balance(3)  # Ravi is user 3
    with VoiceClient(voice_server.socket_url()) as client:
        client.until("ready")
        client.say(spoken("send five hundred rupees to Ravi"))
        asked = client.until("reply")
        assert asked["data"]["require_password"] is True, asked["reply"]
        assert "500 rupees to Ravi" in asked["reply"]
        client.until("audio_start")
        client.send({"type": "password", "password": PASSWORD})  # before the prompt ends
        prompt_end = client.until("audio_end")
        done = client.until("reply")
        client.until("audio_end")
        client.send({"type": "password", "password": PASSWORD})  # sent again: nothing waits
        again = client.until("reply")
    assert prompt_end["interrupted"] is True  # the password stopped the prompt
    assert done["reply"].startswith("Successfully transferred 500 rupees to Ravi.")
    assert again["data"]["require_password"] is False
    assert voice_server.balance(1) == before[0] - 500_00
    assert voice_server.balance(3) == before[1] + 500_00
    assert PASSWORD not in str(client.events)


@pytest.mark.parametrize(
    "audio",
    [
        pytest.param(lambda: np.zeros(3 * SAMPLE_RATE, dtype=np.float32), id="silence"),
        pytest.param(lambda: read_wav(cached_noise_wav("white", 2.0, 0.1))[0], id="white-noise"),
        pytest.param(lambda: read_wav(cached_noise_wav("pink", 2.0, 0.3))[0], id="pink-noise"),
    ],
)
def test_silence_and_noise_make_no_turn(
    voice_server: VoiceServer, audio: Callable[[], np.ndarray]
) -> None:
    with VoiceClient(voice_server.socket_url()) as client:
        client.until("ready")
        client.send_audio(audio())
        client.send_audio(np.zeros(SAMPLE_RATE, dtype=np.float32))
        client.send({"type": "end_of_speech"})
        client.send({"type": "ping"})
        client.until("pong")
        while client.receive(timeout=3) is not None:
            pass
    assert not client.of_type("transcript") and not client.of_type("reply"), client.events


@pytest.mark.parametrize(
    ("frame", "complaint"),
    [
        pytest.param(b"\x01\x02\x03", "even number of bytes", id="odd-byte-count"),
        pytest.param(b"\x00" * (10 * 1024 * 1024), "limited to 1 second", id="10-MB-frame"),
        pytest.param("check my balance", "JSON objects", id="text-instead-of-audio"),
        pytest.param('{"type": "dance"}', "Unknown or missing", id="unknown-type"),
        pytest.param('{"type": "password"}', "password", id="password-missing"),
        pytest.param("[1, 2]", "JSON objects", id="json-array"),
    ],
)
def test_malformed_frames_get_an_error_and_the_session_survives(
    voice_server: VoiceServer, frame: bytes | str, complaint: str
) -> None:
    with VoiceClient(voice_server.socket_url()) as client:
        client.until("ready")
        client.socket.send(frame)
        error = client.until("error")
        assert complaint in error["message"]
        client.send({"type": "text", "text": "check my balance"})
        reply = client.until("reply")
    assert reply["reply"].startswith("Your current account balance is")


def test_speech_over_the_reply_stops_it_and_is_heard(voice_server: VoiceServer) -> None:
    """Barge-in: the long reply is cut off at once and the new question is answered."""
    with VoiceClient(voice_server.socket_url()) as client:
        client.until("ready")
        client.send({"type": "text", "text": "show my last ten transactions"})
        client.until("audio_start")
        client.say(spoken("check my balance", "en+f2"))
        speech_start = client.until("speech_start")
        stopped = client.until("audio_end")
        answer = client.until("reply")
    assert client.events.index(speech_start) < client.events.index(stopped)
    assert stopped["interrupted"] is True
    assert answer["reply"].startswith("Your current account balance is")


def test_unknown_user_is_refused_with_1008(voice_server: VoiceServer) -> None:
    with VoiceClient(voice_server.socket_url(user_id=999)) as client:
        error = client.until("error")
        with pytest.raises(Exception) as closed:
            client.socket.recv(timeout=5)
    assert error["message"] == "User not found. Please log in again."
    assert getattr(closed.value, "rcvd", None) is not None and closed.value.rcvd.code == 1008


def test_a_dropped_socket_mid_reply_loses_nothing(voice_server: VoiceServer) -> None:
    before = voice_server.balance(1)
    with VoiceClient(voice_server.socket_url()) as client:
        client.until("ready")
        client.send({"type": "text", "text": "show my last ten transactions"})
        client.until("audio_start")
    with VoiceClient(voice_server.socket_url()) as client:  # the server carries on
        client.until("ready")
        client.send({"type": "text", "text": "check my balance"})
        reply = client.until("reply")
    assert reply["data"]["balance"] * 100 == before == voice_server.balance(1)


def test_health_says_when_the_voice_models_are_still_warming_up(voice_server: VoiceServer) -> None:
    health = httpx.get(f"{voice_server.base_url}/health").json()
    assert health.get("degraded", {}).get("voice") is None
    voice_server.app.state.services.voice.warm.clear()
    try:
        health = httpx.get(f"{voice_server.base_url}/health").json()
    finally:
        voice_server.app.state.services.voice.warm.set()
    assert health["degraded"]["voice"] == "warming_up"
