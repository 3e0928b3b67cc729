"""What /ws/voice admits before it spends whisper's time, over a real socket with the real
models: a turn over the request limit is never transcribed, the turns waiting are
bounded, audio is taken no faster than real time, and a user has a few sockets at most."""

import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed

from tests.voice.conftest import VoiceServer, serving
from tests.voice.spoken import cached_spoken_wav
from tests.voice.voice_client import SAMPLE_RATE, VoiceClient
from voice.audio import read_wav, resample

REQUESTS = 3  # per user per hour on this server
BURST_S = 1.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceServer]:
    settings = {
        "BANKBOT_DEMO_MODE": "true",
        "BANKBOT_LIMITS__REQUESTS": str(REQUESTS),
        "BANKBOT_LIMITS__REQUESTS_WINDOW_S": "3600",
        "BANKBOT_VOICE__MAX_WAITING_TURNS": "1",
        "BANKBOT_VOICE__AUDIO_BURST_S": str(BURST_S),
        "BANKBOT_VOICE__MAX_SOCKETS_PER_USER": "2",
    }
    with serving(tmp_path_factory.mktemp("voice"), settings) as voice_server:
        yield voice_server


def speech(text: str) -> np.ndarray:
    samples, rate = read_wav(cached_spoken_wav(text, "en-us", 150, 50))
    return resample(samples, rate, SAMPLE_RATE)


class CountingStt:
    """The server's own speech-to-text, counting the clips it is given."""

    def __init__(self, stt: Any) -> None:
        self.stt = stt
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stt, name)

    def transcribe(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.stt.transcribe(*args, **kwargs)


@pytest.fixture
def stt(server: VoiceServer) -> Iterator[CountingStt]:
    voice = server.app.state.services.voice
    counting = CountingStt(voice.stt)
    voice.stt = counting
    yield counting
    voice.stt = counting.stt


def test_an_utterance_over_the_request_limit_is_never_transcribed(
    server: VoiceServer, stt: CountingStt
) -> None:
    with VoiceClient(server.socket_url(2)) as client:
        client.until("ready")
        for _ in range(REQUESTS):  # typed turns use up the limit
            client.send({"type": "text", "text": "check my balance"})
            client.until("reply")
        client.say(cached_spoken_wav("check my balance", "en-us", 150, 50))
        refused = client.until("error")
        time.sleep(2)  # anything the server would still do with it
    assert "Too many requests" in refused["message"]
    assert stt.calls == 0
    assert not client.of_type("transcript")


def test_a_user_has_at_most_two_voice_sockets(server: VoiceServer) -> None:
    with VoiceClient(server.socket_url(3)) as first, VoiceClient(server.socket_url(3)) as second:
        first.until("ready")
        second.until("ready")
        with VoiceClient(server.socket_url(3)) as third:
            refused = third.until("error", timeout=10)
            with pytest.raises(ConnectionClosed):
                third.socket.recv(timeout=5)
        assert "Too many voice connections" in refused["message"]
        assert third.socket.close_code == 1008
        assert not third.of_type("ready")
    with VoiceClient(server.socket_url(3)) as again:  # one closed: a place is free
        again.until("ready")


def test_turns_beyond_the_one_waiting_are_refused_unheard(server: VoiceServer) -> None:
    with VoiceClient(server.socket_url(4)) as client:
        client.until("ready")
        for _ in range(6):
            client.send({"type": "text", "text": "hello"})
        deadline = time.monotonic() + 30
        while len(client.of_type("reply")) + len(client.of_type("error")) < 6:
            assert client.receive(deadline - time.monotonic()) is not None, client.events
    waiting = [e for e in client.of_type("error") if "wait for my answer" in e["message"]]
    assert len(waiting) >= 3  # one answered, one waiting, the rest refused at once
    assert len(client.of_type("reply")) <= 2


def test_audio_is_taken_no_faster_than_it_plays(server: VoiceServer) -> None:
    """Four utterances sent at once (about 8 s of audio): the server hears the fourth no
    sooner than it would have been spoken, less the burst allowed."""
    said = speech("hello there")
    gap = np.zeros(SAMPLE_RATE, dtype=np.float32)
    audio = np.concatenate([said, gap] * 4)
    fourth_starts_s = 3 * (said.size + gap.size) / SAMPLE_RATE
    with VoiceClient(server.socket_url(5)) as client:
        client.until("ready")
        sent_at = time.monotonic()
        sending = threading.Thread(target=client.send_audio, args=(audio,))
        sending.start()
        heard_at = []
        while len(heard_at) < 4:
            event = client.receive(60)
            assert event is not None, client.events
            if event["type"] == "speech_start":
                heard_at.append(time.monotonic() - sent_at)
        sending.join()
    assert heard_at[3] >= fourth_starts_s - BURST_S - 0.5, (heard_at, fourth_starts_s)
