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


class SlowTts:
    """The server's own text-to-speech on a loaded machine: the first piece of each reply
    is ready only after `delay_s`."""

    def __init__(self, tts: Any, delay_s: float) -> None:
        self.tts = tts
        self.delay_s = delay_s

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tts, name)

    def pieces(self, text: str) -> Iterator[bytes]:
        time.sleep(self.delay_s)
        yield from self.tts.pieces(text)


def test_a_reply_cut_off_before_its_speech_is_still_given_as_text(server: VoiceServer) -> None:
    """Typing again while the first answer's speech is being made stops that speech, not
    the answer: the balance is still shown."""
    voice = server.app.state.services.voice
    voice.tts = SlowTts(voice.tts, delay_s=2.0)
    try:
        with VoiceClient(server.socket_url(6)) as client:
            client.until("ready")
            client.send({"type": "text", "text": "check my balance"})
            time.sleep(1.0)  # answered; its speech not ready yet
            client.send({"type": "text", "text": "hello"})
            while len(client.of_type("reply")) < 2:
                assert client.receive(30) is not None, client.events
    finally:
        voice.tts = voice.tts.tts
    answers = [reply["reply"] for reply in client.of_type("reply")]
    assert answers[0].startswith("Your current account balance is "), answers
    assert answers[1].startswith("Hello!"), answers


class SlowAssistant:
    """The server's own assistant on a loaded machine: each turn is answered `delay_s` late
    (long enough for every message the test sends at once to arrive meanwhile)."""

    def __init__(self, assistant: Any, delay_s: float) -> None:
        self.assistant = assistant
        self.delay_s = delay_s

    def __getattr__(self, name: str) -> Any:
        return getattr(self.assistant, name)

    def turn(self, *args: Any, **kwargs: Any) -> Any:  # in the session's worker thread
        time.sleep(self.delay_s)
        return self.assistant.turn(*args, **kwargs)


def test_turns_beyond_the_one_waiting_are_refused_unheard(server: VoiceServer) -> None:
    """Six messages while the first is being answered: one answered, one waiting, and the
    other four refused at once rather than queued."""
    voice = server.app.state.services.voice
    voice.assistant = SlowAssistant(voice.assistant, delay_s=2.0)
    try:
        with VoiceClient(server.socket_url(4)) as client:
            client.until("ready")
            for _ in range(6):
                client.send({"type": "text", "text": "hello"})
            deadline = time.monotonic() + 30
            while len(client.of_type("reply")) + len(client.of_type("error")) < 6:
                assert client.receive(deadline - time.monotonic()) is not None, client.events
    finally:
        voice.assistant = voice.assistant.assistant
    waiting = [e for e in client.of_type("error") if "wait for my answer" in e["message"]]
    assert len(waiting) == 4, client.events
    assert len(client.of_type("reply")) == 2, client.events


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
