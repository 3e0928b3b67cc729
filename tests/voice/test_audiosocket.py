"""Asterisk AudioSocket over real TCP: a test peer speaking to the real server and models.

The peer (tests/voice/audiosocket_peer.py) does what Asterisk does: registers the call's
caller number over HTTP (the dialplan's CURL), connects, sends the UUID, then real speech
(espeak-ng, resampled to 8 kHz) in 20 ms frames at real time, keypad digits and a hangup.
What it hears back is checked as a caller would hear it, by transcribing it.
"""

import asyncio
import logging
import socket
import struct
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from tests.conftest import free_port, fresh_window
from tests.voice.audiosocket_peer import (
    AUDIO,
    ERROR,
    FRAME_BYTES,
    FRAME_S,
    HANGUP,
    RATE,
    AudioSocketPeer,
    Received,
    message,
    phone_audio,
    samples_of,
)
from tests.voice.conftest import VoiceServer, serving
from tests.voice.spoken import cached_spoken_wav, words
from voice.audio import PIPELINE_RATE, resample
from voice.audiosocket_server import STANDBY_RETRY_S, AudioSocketServer, AudioSocketSettings

SECRET = "a-test-registration-secret"
PIN = "1234"  # every demo user's (data/demo_users.yaml)
NUMBERS = {user: f"+1555010000{user}" for user in range(1, 6)}  # data/demo_users.yaml


@pytest.fixture(scope="module")
def phone_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceServer]:
    settings = {
        "BANKBOT_AUDIOSOCKET__ENABLED": "true",
        "BANKBOT_AUDIOSOCKET__PORT": str(free_port()),
        "BANKBOT_AUDIOSOCKET__REGISTRATION_SECRET": SECRET,
        "BANKBOT_AUDIOSOCKET__FIRST_MESSAGE_TIMEOUT_S": "1",
    }
    with serving(tmp_path_factory.mktemp("phone"), settings) as server:
        yield server


def port(server: VoiceServer) -> int:
    return server.app.state.services.audiosocket.port


def register(server: VoiceServer, caller: str) -> uuid.UUID:
    """What the dialplan does before AudioSocket(): the UUID for a call from `caller`."""
    form = {"caller": caller, "secret": SECRET}
    answer = httpx.post(f"{server.base_url}/telephony/audiosocket/calls", data=form)
    assert answer.status_code == 201, answer.text
    return uuid.UUID(answer.text)


def call(server: VoiceServer, user: int | None, caller: str | None = None) -> AudioSocketPeer:
    call_id = register(server, caller or NUMBERS[user or 1])
    peer = AudioSocketPeer(port(server))
    peer.hello(call_id)
    return peer


def signed_in(server: VoiceServer, user: int) -> tuple[AudioSocketPeer, float]:
    """A call whose caller types the PIN as soon as it is asked for (typing stops the
    prompt), and when the PIN was sent; returns once the greeting by name has begun."""
    peer = call(server, user)
    while not peer.audio_frames():
        time.sleep(0.02)
    peer.keys(PIN + "#")
    typed = time.monotonic()
    while not peer.audio_frames(since=typed):
        assert not peer.closed.is_set(), f"the server hung up: {peer.kinds()}"
        time.sleep(0.02)
    return peer, typed


def spoken(text: str, voice: str = "en-us") -> np.ndarray:
    return phone_audio(cached_spoken_wav(text, voice, 150, 50))


def heard(server: VoiceServer, frames: list[Received]) -> set[str]:
    """The words of reply audio, as the assistant's own speech-to-text hears them. tiny.en
    on the piper voice at 8 kHz mishears some ("you correct" for "incorrect") and may drop
    a sentence of a long reply: checks look for any of a few telling words."""
    audio = resample(samples_of(frames), RATE, PIPELINE_RATE)
    return set(words(server.app.state.services.voice.stt.transcribe(audio).text))


def assert_phone_audio(frames: list[Received]) -> None:
    """8 kHz signed linear in 320-byte frames, sent at real time (never ahead by more than
    the playback lead, 60 ms, plus scheduling slack), and audible."""
    assert frames and all(f.kind == AUDIO and len(f.payload) == FRAME_BYTES for f in frames)
    first = frames[0].at
    for index, frame in enumerate(frames):
        assert frame.at - first >= index * FRAME_S - 0.25, f"frame {index} came too early"
    span = frames[-1].at - first
    assert span >= len(frames) * FRAME_S - 0.3  # not sent in a burst
    samples = samples_of(frames)
    assert float(np.sqrt(np.mean(samples**2))) > 0.02  # speech, not silence


def test_transfer_confirmed_by_keypad_pin_moves_money_once(phone_server: VoiceServer) -> None:
    before = phone_server.balance(1), phone_server.balance(3)  # Ravi is user 3
    peer, typed = signed_in(phone_server, 1)
    with peer:
        greeting = peer.reply(since=typed)
        assert_phone_audio(greeting)
        spoke_until = peer.say(spoken("send five hundred rupees to Ravi"))
        prompt = peer.reply(since=spoke_until)
        assert_phone_audio(prompt)
        assert heard(phone_server, prompt) & {"500", "ravi", "pin", "keypad", "hash"}
        peer.keys(PIN + "#")
        typed = time.monotonic()
        done = peer.reply(since=typed)
        assert_phone_audio(done)
        assert heard(phone_server, done) & {"successfully", "transferred", "balance", "9500"}
        peer.keys(PIN + "#")  # again: nothing waits for a PIN now
        time.sleep(2)
        peer.hang_up()
        assert peer.wait_closed()
    assert phone_server.balance(1) == before[0] - 500_00
    assert phone_server.balance(3) == before[1] + 500_00


def test_a_wrong_pin_moves_no_money(phone_server: VoiceServer) -> None:
    before = phone_server.balance(2), phone_server.balance(3)
    peer, _ = signed_in(phone_server, 2)
    with peer:
        spoke_until = peer.say(spoken("send five hundred rupees to Ravi"))  # over the greeting
        prompt = peer.reply(since=spoke_until)
        assert heard(phone_server, prompt) & {"500", "ravi", "pin", "keypad", "hash"}
        peer.keys("9999#")
        refused = peer.reply(since=time.monotonic())
        assert heard(phone_server, refused) & {"incorrect", "cancelled", "canceled"}
    assert (phone_server.balance(2), phone_server.balance(3)) == before


def test_talking_over_the_greeting_stops_it_and_is_answered(phone_server: VoiceServer) -> None:
    peer, typed = signed_in(phone_server, 4)
    with peer:
        time.sleep(0.5)  # the greeting is playing
        speech = spoken("check my balance")
        spoke_until: list[float] = []  # when its last audible sample was sent
        talking = threading.Thread(target=lambda: spoke_until.append(peer.say(speech)))
        started = time.monotonic()
        talking.start()
        time.sleep(1.2)
        greeting = peer.audio_frames(since=typed)
        cut_at = greeting[-1].at
        talking.join()
        # From the end of the words, not of the clip: the reply begins within the clip's
        # trailing silence, and a reply heard without its first words may be misheard.
        answer = peer.reply(since=spoke_until[0])
    # The greeting (about 5 s) stopped soon after the caller's voice began.
    assert cut_at - started < 0.9, cut_at - started
    assert len(greeting) * FRAME_S < 3
    assert "5000" in heard(phone_server, answer)


def test_four_concurrent_calls_each_hear_their_own_balance(phone_server: VoiceServer) -> None:
    """Three callers ask at once and each hears their own balance; a fourth hangs up by
    dropping the connection mid-sentence, which disturbs nobody."""
    ledger = phone_server.app.state.services.dialogue.assistant.ledger
    ledger.transfer(2, 5, 1000_00, receiver_label="Mike", sender_label="Jane")
    balances = {user: phone_server.balance(user) // 100 for user in (1, 2, 3)}
    assert len(set(balances.values())) == 3, balances
    answers: dict[int, list[Received]] = {}
    failures: list[BaseException] = []

    def ask(user: int, voice: str) -> None:
        try:
            peer, _ = signed_in(phone_server, user)
            with peer:
                spoke_until = peer.say(spoken("what is my balance", voice))
                answers[user] = peer.reply(since=spoke_until, timeout=120)
                peer.hang_up()
        except BaseException as failure:
            failures.append(failure)

    def drop() -> None:
        peer, _ = signed_in(phone_server, 5)
        speech = spoken("show my last five transactions", "en+f2")
        peer.say(speech[: len(speech) // 2], silence_after_s=0)
        peer.sock.close()  # no hangup message: the connection just ends

    threads = [
        threading.Thread(target=ask, args=(user, voice))
        for user, voice in ((1, "en-us"), (2, "en+f2"), (3, "en-us+m3"))
    ] + [threading.Thread(target=drop)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not failures, failures
    for user, frames in answers.items():
        assert_phone_audio(frames)
        assert str(balances[user]) in heard(phone_server, frames), user
    deadline = time.monotonic() + 10
    while (
        phone_server.app.state.services.audiosocket.calls()
    ):  # every call ended, the dropped one too
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_an_unknown_number_is_told_so_and_hung_up(phone_server: VoiceServer) -> None:
    with call(phone_server, None, caller="+15557654321") as peer:
        assert peer.wait_closed(timeout=60)
    frames = peer.audio_frames()
    assert_phone_audio(frames)
    assert peer.kinds()[-1] == HANGUP
    assert heard(phone_server, frames) & {"registered", "number"}


def test_a_call_id_is_good_for_one_call_only(phone_server: VoiceServer) -> None:
    call_id = register(phone_server, NUMBERS[1])
    with AudioSocketPeer(port(phone_server)) as first:
        first.hello(call_id)
        first.reply(since=0)  # the PIN prompt: the caller is known
        first.hang_up()
    with AudioSocketPeer(port(phone_server)) as second:
        second.hello(call_id)  # replayed: an unknown caller
        assert second.wait_closed(timeout=60)
    assert second.kinds()[-1] == HANGUP
    with AudioSocketPeer(port(phone_server)) as stranger:
        stranger.hello(uuid.uuid4())  # never registered
        assert stranger.wait_closed(timeout=60)
    assert stranger.kinds()[-1] == HANGUP


@pytest.mark.parametrize(
    ("form", "status"),
    [
        ({"caller": NUMBERS[1], "secret": "not-the-secret"}, 403),
        ({"caller": NUMBERS[1]}, 422),
        ({"secret": SECRET}, 422),
    ],
)
def test_registering_a_call_needs_the_secret_and_a_number(
    phone_server: VoiceServer, form: dict[str, str], status: int
) -> None:
    answer = httpx.post(f"{phone_server.base_url}/telephony/audiosocket/calls", data=form)
    assert answer.status_code == status
    assert SECRET not in answer.text


def test_malformed_messages_are_logged_and_the_call_goes_on(
    phone_server: VoiceServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="voice.audiosocket_server")
    with call(phone_server, 1) as peer:
        peer.send(message(AUDIO, b"\x01\x02\x03"))  # odd length
        peer.send(message(0x42, b"what"))  # unknown type
        peer.send(message(0x03, b"12"))  # two keys in one DTMF message
        peer.send(message(AUDIO, bytes(FRAME_BYTES)))
        assert not peer.wait_closed(timeout=1.5)  # still in the call
        peer.send(struct.pack(">BH", AUDIO, FRAME_BYTES) + bytes(10))  # cut short...
        peer.sock.shutdown(socket.SHUT_WR)  # ...by the end of the stream
        assert peer.wait_closed(timeout=10)
    assert peer.kinds()[-1] == HANGUP
    logged = caplog.text
    assert "even byte count, got 3" in logged
    assert "unknown message type 0x42" in logged
    assert "DTMF payload is one key" in logged and "12" not in logged.split("DTMF")[1][:40]
    assert "ended 13 bytes into a message" in logged


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(message(AUDIO, bytes(FRAME_BYTES)), id="audio-before-the-id"),
        pytest.param(message(0x01, b"short"), id="an-id-of-5-bytes"),
        pytest.param(b"", id="nothing-at-all"),
    ],
)
def test_a_call_must_start_with_its_id(phone_server: VoiceServer, first: bytes) -> None:
    with AudioSocketPeer(port(phone_server)) as peer:
        if first:
            peer.send(first)
        assert peer.wait_closed(timeout=10)  # nothing: closed after the 1 s allowed
    assert peer.kinds() == [HANGUP]


def test_an_error_from_asterisk_ends_the_call(
    phone_server: VoiceServer, caplog: pytest.LogCaptureFixture
) -> None:
    with call(phone_server, 1) as peer:
        peer.send(message(ERROR, b"\x01"))
        assert peer.wait_closed(timeout=10)
    assert "hangup of calling party" in caplog.text


@pytest.fixture
def limited_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceServer]:
    """One request an hour per user: a caller's second question is over the limit."""
    settings = {
        "BANKBOT_AUDIOSOCKET__ENABLED": "true",
        "BANKBOT_AUDIOSOCKET__PORT": str(free_port()),
        "BANKBOT_AUDIOSOCKET__REGISTRATION_SECRET": SECRET,
        "BANKBOT_LIMITS__REQUESTS": "1",
        "BANKBOT_LIMITS__REQUESTS_WINDOW_S": "3600",
    }
    with serving(tmp_path_factory.mktemp("phone"), settings) as server:
        yield server


def test_each_question_counts_toward_the_request_limit(limited_server: VoiceServer) -> None:
    """As a chat message does: over the limit, the caller is told so and nothing is asked."""
    fresh_window(3600, margin_s=120)  # both questions in one window
    peer, _ = signed_in(limited_server, 1)
    with peer:
        spoke_until = peer.say(spoken("what is my balance"))
        assert "10000" in heard(limited_server, peer.reply(since=spoke_until))
        spoke_until = peer.say(spoken("what is my balance"))
        refused = heard(limited_server, peer.reply(since=spoke_until))
        assert refused & {"many", "requests", "limit", "retry"}, refused
        assert "10000" not in refused
        peer.hang_up()


def test_a_second_process_stands_by_on_the_taken_port_and_takes_over() -> None:
    """Two servers on one host (workers, or a second server.py) and one AudioSocket port:
    one listens, the other waits without failing, and listens once the first has stopped."""
    settings = AudioSocketSettings(
        enabled=True,
        host="127.0.0.1",
        port=free_port(),
        registration_secret=SECRET,
        registration_ttl_s=30,
        first_message_timeout_s=1,
    )

    async def scenario() -> None:
        # Neither takes a call here, so neither needs the speech models or the session store.
        first, second = (AudioSocketServer(settings, None, None, None, None) for _ in range(2))
        await first.start()
        await second.start()
        assert first.port == settings.port and second._server is None
        await first.stop()
        deadline = time.monotonic() + STANDBY_RETRY_S + 2
        while second._server is None:
            assert time.monotonic() < deadline, "the standby never took the port over"
            await asyncio.sleep(0.1)
        assert second.port == settings.port
        await second.stop()

    asyncio.run(scenario())
