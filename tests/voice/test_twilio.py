"""Twilio Media Streams against the real server: webhook over HTTP, the stream over a real
WebSocket, real speech (espeak-ng, made 8 kHz μ-law as a phone line carries it), keypad
digits; the reply audio is checked as a phone would receive it and heard by the STT."""

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from xml.etree import ElementTree

import httpx
import numpy as np
import pytest
import uvicorn

from server import create_app
from tests.conftest import free_port, settings_for
from tests.voice.conftest import VoiceServer
from tests.voice.spoken import PAD_S, cached_spoken_wav, words
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


def test_speaking_over_the_greeting_clears_it_and_is_answered(voice_server: VoiceServer) -> None:
    with TwilioPeer(voice_server.base_url, JOHN) as peer:
        peer.wait(lambda: len(peer.received.media) > 25, 30, "greeting")
        speaking_from = time.monotonic()
        spoke_until = peer.say(spoken(BALANCE))
        answer_mark = peer.wait_mark(1)
    assert answer_mark == "reply-2"  # the greeting (reply-1) never finished
    assert len(peer.received.clears) == 1
    cleared_at = peer.received.clears[0]
    assert speaking_from < cleared_at < spoke_until
    # Nothing more of the greeting after the clear, until the words end (the clip ends
    # with PAD_S[1] of silence), before which no answer can start.
    assert not peer.audio_between(cleared_at + 0.1, spoke_until - PAD_S[1])
    frames, _ = peer.reply_audio(1)
    assert_phone_audio(frames)
    assert "10000" in heard(voice_server, frames)


def ask_for_transfer(peer: TwilioPeer, server: VoiceServer) -> list[str]:
    """Hear the greeting out, say the transfer; the words of the prompt that follows."""
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
        again.wait_mark(1)


def test_bad_messages_are_logged_and_the_call_goes_on(
    voice_server: VoiceServer, caplog: pytest.LogCaptureFixture
) -> None:
    with TwilioPeer(voice_server.base_url, JOHN) as peer:
        peer.send_raw("this is not JSON")
        peer.send_raw(json.dumps({"event": "media", "media": {"payload": "@@not base64@@"}}))
        peer.send_raw(json.dumps({"event": "media", "media": {"payload": "A" * 20000}}))
        peer.send_raw(json.dumps({"event": "transcription", "text": "?"}))
        peer.send_raw(b"\x00\x01")
        peer.wait_mark(1)  # the greeting played out: the call is alive
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
            threading.Thread(target=lambda p=peer: (p.wait_mark(1), p.say(spoken(BALANCE))))
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
    app = create_app(settings_for(f"sqlite:///{database}", **environ))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=asyncio.run, args=(server.serve(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start in 30 s"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=20)


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
