"""Twilio Media Streams against the real server: webhook over HTTP, the stream over a real
WebSocket, real speech (espeak-ng, made 8 kHz μ-law as a phone line carries it), keypad
digits; the reply audio is checked as a phone would receive it and heard by the STT."""

import json
import threading
import time
from collections.abc import Iterator
from xml.etree import ElementTree

import httpx
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from server import create_app
from tests.conftest import serving, settings_for
from tests.voice.conftest import VoiceServer
from tests.voice.spoken import cached_spoken_wav, words
from tests.voice.twilio_peer import FRAME_BYTES, FRAME_S, TwilioPeer
from voice import twilio
from voice.audio import PHONE_RATE, PIPELINE_RATE, mulaw_decode, resample

PIN = "1234"  # every demo user's (data/demo_users.yaml)
JOHN = "+15550100001"  # demo user 1, whose contacts include Ravi (user 3)
UNKNOWN = "+15550100099"
# Phrases and voices the 8 kHz path hears right (tests/voice/spoken.py makes them).
BALANCE = ("what is my balance", "en-us")
TRANSFER = ("transfer five hundred rupees to Ravi", "en-gb")


def spoken(phrase: tuple[str, str]) -> object:
    return cached_spoken_wav(phrase[0], phrase[1], 150, 50)


def heard(server: VoiceServer, frames: list[tuple[float, bytes]]) -> list[str]:
    """The words the server's own STT hears in reply audio, as the caller got it."""
    audio = mulaw_decode(b"".join(data for _, data in frames))
    audio = resample(audio, PHONE_RATE, PIPELINE_RATE)
    return words(server.app.state.services.voice.stt.transcribe(audio).text)


def assert_phone_audio(frames: list[tuple[float, bytes]]) -> None:
    """20 ms μ-law frames of audible speech, arriving at the pace they play at."""
    assert len(frames) > 50  # a sentence, not a blip
    assert {len(data) for _, data in frames} == {FRAME_BYTES}
    audio = mulaw_decode(b"".join(data for _, data in frames))
    assert np.sqrt(np.mean(np.square(audio))) > 0.02
    span = frames[-1][0] - frames[0][0]
    playing = len(frames) * FRAME_S
    assert span > playing - 0.5, f"{playing:.2f} s of audio arrived in {span:.2f} s"


def test_webhook_answers_with_twiml_connecting_the_stream(voice_server: VoiceServer) -> None:
    peer = TwilioPeer(voice_server.base_url, JOHN)
    answer = peer.webhook()
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/xml")
    stream = ElementTree.fromstring(answer.text).find("./Connect/Stream")
    assert stream is not None
    port = voice_server.base_url.rsplit(":", 1)[1]
    assert stream.get("url") == f"ws://127.0.0.1:{port}/telephony/twilio/stream"
    parameters = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert parameters["caller"] == JOHN
    assert parameters["ticket"]


def test_an_unknown_number_is_told_so_and_the_call_ends(voice_server: VoiceServer) -> None:
    with TwilioPeer(voice_server.base_url, UNKNOWN) as peer:
        peer.wait_mark(1)
        peer.wait(lambda: peer.received.closed_at is not None, 15, "hang-up")
    frames, marked_at = peer.reply_audio(1)
    assert_phone_audio(frames)
    assert {"not", "registered", "number"} & set(heard(voice_server, frames))
    assert peer.received.closed_at is not None and peer.received.closed_at >= marked_at


def sign_in(peer: TwilioPeer) -> None:
    """Type the PIN as soon as the call asks for it (typing stops the prompt, reply-1, which
    is cleared and never marked): the greeting by name follows, the call's first mark."""
    peer.wait(lambda: peer.received.media, 30, "the PIN prompt")
    peer.press(PIN + "#")


def test_speaking_over_the_greeting_clears_it_and_is_answered(voice_server: VoiceServer) -> None:
    with TwilioPeer(voice_server.base_url, JOHN) as peer:
        sign_in(peer)
        peer.wait(lambda: len(peer.received.clears) == 1, 30, "the PIN prompt cleared")
        signed_in = peer.received.clears[0]

        def greeting_frames() -> int:
            return sum(1 for at, _ in peer.received.media if at > signed_in)

        peer.wait(lambda: greeting_frames() > 25, 30, "greeting")
        speaking_from = time.monotonic()
        spoke_until = peer.say(spoken(BALANCE))
        answer_mark = peer.wait_mark(1)
    assert answer_mark == "reply-3"  # the PIN prompt and the greeting never finished
    assert len(peer.received.clears) == 2
    cleared_at = peer.received.clears[1]
    assert speaking_from < cleared_at < spoke_until
    # Nothing more of the greeting after the clear, until the words end, before which no
    # answer can start.
    assert not peer.audio_between(cleared_at + 0.1, peer.words_ended_at)
    frames, _ = peer.reply_audio(1)
    assert_phone_audio(frames)
    assert "10000" in heard(voice_server, frames)


def ask_for_transfer(peer: TwilioPeer, server: VoiceServer) -> list[str]:
    """Sign in, hear the greeting out, say the transfer; the words of the prompt that
    follows."""
    sign_in(peer)
    peer.wait_mark(1)
    peer.say(spoken(TRANSFER))
    peer.wait_mark(2)
    return heard(server, peer.reply_audio(2)[0])


def test_a_transfer_confirmed_by_keypad_pin_moves_money_once(voice_server: VoiceServer) -> None:
    before = voice_server.balance(1), voice_server.balance(3)  # Ravi is user 3
    with TwilioPeer(voice_server.base_url, JOHN) as peer:
        prompt = ask_for_transfer(peer, voice_server)
        peer.press("9*" + PIN + "#")  # "*" starts again
        peer.wait_mark(3)
        done = heard(voice_server, peer.reply_audio(3)[0])
        peer.press(PIN + "#")  # nothing waits for a PIN now: the keys do nothing
        time.sleep(3)
    # tiny.en hearing the piper voice at 8 kHz mishears some words ("and correct" for
    # "incorrect"): the words are checked for any of a few telling ones, money in the ledger.
    assert {"press", "hash", "keypad"} & set(prompt)  # "... type your PIN ..., press hash."
    assert {"500", "9500", "successfully"} & set(done)  # "... Your new balance is 9500 ..."
    assert PIN not in " ".join(done + prompt)
    assert len(peer.received.marks) == 3
    assert voice_server.balance(1) == before[0] - 500_00
    assert voice_server.balance(3) == before[1] + 500_00


def test_a_wrong_keypad_pin_moves_no_money(voice_server: VoiceServer) -> None:
    before = voice_server.balance(1), voice_server.balance(3)
    events = voice_server.app.state.services.dialogue.assistant.ledger.events
    failures = len(events.for_user(1, "password.failed"))
    with TwilioPeer(voice_server.base_url, JOHN) as peer:
        ask_for_transfer(peer, voice_server)
        peer.press("9999#")
        peer.wait_mark(3)
        refused = heard(voice_server, peer.reply_audio(3)[0])
    assert {"incorrect", "cancelled", "canceled"} & set(refused)  # "Incorrect PIN. …"
    assert (voice_server.balance(1), voice_server.balance(3)) == before
    failed = events.for_user(1, "password.failed")[failures:]
    assert [event.payload for event in failed] == [{"channel": "twilio", "factor": "pin"}]


def test_a_dropped_call_makes_no_pending_transfer(voice_server: VoiceServer) -> None:
    before = voice_server.balance(1), voice_server.balance(3)
    with TwilioPeer(voice_server.base_url, JOHN) as peer:
        ask_for_transfer(peer, voice_server)
        peer.press(PIN)  # and the line drops before "#"
        peer.drop()
    time.sleep(2)
    assert (voice_server.balance(1), voice_server.balance(3)) == before
    # The server is fine: the next call is greeted.
    with TwilioPeer(voice_server.base_url, JOHN) as again:
        sign_in(again)
        again.wait_mark(1)


def test_bad_messages_are_logged_and_the_call_goes_on(
    voice_server: VoiceServer, caplog: pytest.LogCaptureFixture
) -> None:
    with TwilioPeer(voice_server.base_url, JOHN) as peer:
        peer.send_raw("this is not JSON")
        peer.send_raw(json.dumps({"event": "media", "media": {"payload": "@@not base64@@"}}))
        peer.send_raw(json.dumps({"event": "media", "media": {"payload": "A" * 12000}}))
        peer.send_raw(json.dumps({"event": "transcription", "text": "?"}))
        peer.send_raw(b"\x00\x01")
        peer.wait_mark(1)  # the PIN prompt played out: the call is alive
        assert peer.received.closed_at is None
    logged = caplog.text
    assert "ignored a message" in logged and "media payload was not valid" in logged
    assert "binary frame" in logged


def test_a_stream_without_the_servers_ticket_is_refused(voice_server: VoiceServer) -> None:
    peer = TwilioPeer(voice_server.base_url, JOHN)
    url = voice_server.base_url.replace("http", "ws", 1) + "/telephony/twilio/stream"
    forged = {"caller": JOHN, "ticket": f"{int(time.time())}.{'0' * 64}"}
    peer.open(url, forged)
    peer.wait(lambda: peer.received.closed_at is not None, 10, "refusal")
    assert peer.socket.close_code == 1008
    assert not peer.received.media
    peer.drop()


def test_four_concurrent_calls_each_hear_their_own_balance(voice_server: VoiceServer) -> None:
    balances = {user: voice_server.balance(user) // 100 for user in (1, 2, 3, 4)}
    peers = {user: TwilioPeer(voice_server.base_url, f"+1555010000{user}") for user in balances}
    for peer in peers.values():
        peer.__enter__()
    try:
        speakers = [
            threading.Thread(
                target=lambda p=peer: (sign_in(p), p.wait_mark(1), p.say(spoken(BALANCE)))
            )
            for peer in peers.values()
        ]
        for thread in speakers:
            thread.start()
        for thread in speakers:
            thread.join(timeout=90)
        for peer in peers.values():
            peer.wait_mark(2, timeout=90)
    finally:
        for peer in peers.values():
            peer.hang_up()
    for user, peer in peers.items():
        frames, _ = peer.reply_audio(2)
        assert_phone_audio(frames)
        assert str(balances[user]) in heard(voice_server, frames), user


def test_the_caller_types_the_pin_before_hearing_anything_of_the_account(
    voice_server: VoiceServer,
) -> None:
    """A spoofed number alone hears nothing: not the name, not the balance."""
    events = voice_server.app.state.services.dialogue.assistant.ledger.events
    failures = len(events.for_user(1, "password.failed"))
    balance = str(voice_server.balance(1) // 100)
    with TwilioPeer(voice_server.base_url, JOHN) as peer:
        peer.wait_mark(1)  # the prompt, played out
        spoke_until = peer.say(spoken(BALANCE))  # asked before the PIN
        time.sleep(3)
        unanswered = peer.audio_between(spoke_until, time.monotonic())
        peer.press("9999#")
        peer.wait_mark(2)
        peer.press(PIN + "#")
        peer.wait_mark(3)
        peer.say(spoken(BALANCE))
        peer.wait_mark(4)
    prompt, wrong, greeting, answer = (
        heard(voice_server, peer.reply_audio(n)[0]) for n in (1, 2, 3, 4)
    )
    assert {"pin", "keypad", "hash"} & set(prompt) and "john" not in prompt
    assert not unanswered
    assert {"not", "right", "again"} & set(wrong)  # "That PIN is not right. Please type ..."
    assert "john" in greeting
    assert balance in answer
    failed = events.for_user(1, "password.failed")[failures:]
    assert [event.payload for event in failed] == [{"channel": "twilio", "factor": "pin"}]


@pytest.mark.parametrize(
    ("verstat", "trusted", "pin_asked"),
    [
        ("TN-Validation-Passed-A", False, True),  # the default: a PIN all the same
        ("TN-Validation-Passed-A", True, False),
        ("TN-Validation-Passed-B", True, True),  # the carrier does not vouch for the number
    ],
)
def test_a_number_the_carrier_vouches_for_may_skip_the_pin(
    voice_server: VoiceServer, verstat: str, trusted: bool, pin_asked: bool
) -> None:
    settings = voice_server.app.state.services.settings.twilio
    settings.skip_pin_when_verified = trusted
    try:
        with TwilioPeer(voice_server.base_url, JOHN, stir_verstat=verstat) as peer:
            peer.wait_mark(1)
    finally:
        settings.skip_pin_when_verified = False
    first = set(heard(voice_server, peer.reply_audio(1)[0]))
    assert bool({"pin", "keypad", "hash"} & first) is pin_asked, first
    assert ("john" in first) is not pin_asked, first


def stream_url(base_url: str) -> str:
    return base_url.replace("http", "ws", 1) + "/telephony/twilio/stream"


def test_a_stream_without_a_valid_start_is_closed_within_seconds(
    voice_server: VoiceServer,
) -> None:
    with connect(stream_url(voice_server.base_url), open_timeout=10) as idle:
        idle.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        opened = time.monotonic()
        with pytest.raises(ConnectionClosed):
            idle.recv(timeout=15)
        waited = time.monotonic() - opened
    assert idle.close_code == 1008
    assert waited < 8  # twilio.start_timeout_s is 5


def test_a_message_longer_than_twilio_sends_closes_the_stream(voice_server: VoiceServer) -> None:
    with TwilioPeer(voice_server.base_url, JOHN) as peer:
        peer.wait(lambda: peer.received.media, 30, "the PIN prompt")
        peer.send_raw(json.dumps({"event": "media", "media": {"payload": "A" * 40000}}))
        peer.wait(lambda: peer.received.closed_at is not None, 10, "the stream closed")
    assert peer.socket.close_code == 1009


def test_a_ticket_opens_one_stream_once(voice_server: VoiceServer) -> None:
    first = TwilioPeer(voice_server.base_url, JOHN)
    stream = ElementTree.fromstring(first.webhook().text).find("./Connect/Stream")
    assert stream is not None
    parameters = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    first.open(stream.get("url", ""), parameters)
    try:
        first.wait(lambda: first.received.media, 30, "the PIN prompt")
        replay = TwilioPeer(voice_server.base_url, JOHN)
        replay.call_sid = first.call_sid
        replay.open(stream.get("url", ""), parameters)
        replay.wait(lambda: replay.received.closed_at is not None, 10, "the refusal")
        assert replay.socket.close_code == 1008
        assert not replay.received.media
        replay.drop()
        assert first.received.closed_at is None  # the first stream goes on
    finally:
        first.hang_up()


# Signed webhooks: a server that requires Twilio's signature, voice off (it answers
# with TwiML that says so), and one with no auth token outside demo mode.

AUTH_TOKEN = "12345"


@pytest.fixture(scope="module")
def signed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _serve(tmp_path_factory, BANKBOT_TWILIO__AUTH_TOKEN=AUTH_TOKEN)


@pytest.fixture(scope="module")
def unconfigured_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from _serve(tmp_path_factory)


def _serve(tmp_path_factory: pytest.TempPathFactory, **environ: str) -> Iterator[str]:
    database = tmp_path_factory.mktemp("twilio") / "bank.db"
    with serving(create_app(settings_for(f"sqlite:///{database}", **environ))) as base_url:
        yield base_url


def test_signature_is_twilios() -> None:
    """The example of Twilio's request-validation documentation."""
    form = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio.signature("12345", url, form) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_only_webhooks_signed_with_the_auth_token_are_answered(signed_server: str) -> None:
    url = f"{signed_server}/telephony/twilio/voice"
    form = {"CallSid": "CA" + "1" * 32, "From": JOHN, "To": "+15550109999"}
    good = twilio.signature(AUTH_TOKEN, url, form)
    unsigned = httpx.post(url, data=form)
    altered = ("B" if good[0] == "A" else "A") + good[1:]
    forged = httpx.post(url, data=form, headers={"X-Twilio-Signature": altered})
    other_caller = httpx.post(
        url, data={**form, "From": "+15550100002"}, headers={"X-Twilio-Signature": good}
    )
    signed = httpx.post(url, data=form, headers={"X-Twilio-Signature": good})
    assert [r.status_code for r in (unsigned, forged, other_caller)] == [403, 403, 403]
    assert signed.status_code == 200
    answer = ElementTree.fromstring(signed.text)  # voice is off on this server: it says so
    assert answer.find("Connect") is None and answer.find("Hangup") is not None
    assert "not available" in (answer.findtext("Say") or "")


def test_without_an_auth_token_only_demo_mode_takes_calls(unconfigured_server: str) -> None:
    form = {"CallSid": "CA" + "1" * 32, "From": JOHN, "To": "+15550109999"}
    answer = httpx.post(f"{unconfigured_server}/telephony/twilio/voice", data=form)
    assert answer.status_code == 503
    assert "auth_token" in answer.text


@pytest.mark.parametrize("server", ["unconfigured_server", "signed_server"])
def test_the_stream_is_refused_where_telephony_is_off(
    request: pytest.FixtureRequest, server: str
) -> None:
    """No auth token outside demo mode, or the voice channel off: no socket at all."""
    with pytest.raises(InvalidStatus) as refused:
        connect(stream_url(request.getfixturevalue(server)), open_timeout=10)
    assert refused.value.response.status_code == 403
