"""Turn-taking by voice with the microphone open all the time, as the widget's and a phone's
are: a pause mid-sentence is not the end of a turn, a backchannel over a reply does not stop
it, a real interruption does. Real server, real socket, real models (Silero VAD, whisper,
Smart Turn, piper); espeak-ng voices, not the assistant's; judged by the events, the reply
audio and the ledger.
"""

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from nlu.model_files import require
from tests.voice.conftest import VoiceServer, serving
from tests.voice.spoken import cached_spoken_wav, words
from tests.voice.test_twilio import sign_in
from tests.voice.twilio_peer import TwilioPeer
from tests.voice.voice_client import SAMPLE_RATE, VoiceClient
from voice.audio import read_wav, resample, write_wav
from voice.turn import SmartTurn, TurnJudge, TurnSettings, is_backchannel

PASSWORD = "password123"  # every demo user's (data/demo_users.yaml)
PIN = "1234"
JOHN = "+15550100001"  # demo user 1, whose contacts include Ravi (user 3)
RAVI = 3


def said(text: str, voice: str, speed: int = 150) -> np.ndarray:
    """espeak-ng's speech from its first to its last audible sample (16 kHz)."""
    samples = read_wav(cached_spoken_wav(text, voice, speed, 50))[0]
    audible = np.nonzero(np.abs(samples) > 0.01)[0]
    return samples[audible[0] : audible[-1] + 1]


def paused(first: str, pause_s: float, rest: str, voice: str) -> np.ndarray:
    """One sentence said with a pause in the middle, silence before and after."""
    gap = np.zeros(round(pause_s * SAMPLE_RATE), dtype=np.float32)
    edge = np.zeros(round(0.3 * SAMPLE_RATE), dtype=np.float32)
    return np.concatenate([edge, said(first, voice), gap, said(rest, voice), edge])


@pytest.mark.parametrize(
    ("first", "pause_s", "rest", "voice"),
    [
        ("send five hundred rupees to", 0.9, "Ravi", "en-us"),  # ends in "to"
        ("send five hundred rupees", 1.2, "to Ravi", "en+f2"),  # a transfer with no receiver
    ],
)
def test_a_pause_inside_a_transfer_is_not_the_end_of_the_turn(
    voice_server: VoiceServer, first: str, pause_s: float, rest: str, voice: str
) -> None:
    before = voice_server.balance(1), voice_server.balance(RAVI)
    with VoiceClient(voice_server.socket_url()) as client:
        client.until("ready")
        with client.open_microphone():
            client.speak(paused(first, pause_s, rest, voice))
            asked = client.until("reply")
            client.send({"type": "password", "password": PASSWORD})
            done = client.until("reply")
    # Cut at the pause, the first turn would lack the words after it.
    transcripts = client.of_type("transcript")
    assert len(transcripts) == 1 and {"500", "ravi"} <= set(words(transcripts[0]["text"]))
    assert "500 rupees to Ravi" in asked["reply"] and asked["data"]["require_password"]
    assert done["reply"].startswith("Successfully transferred"), done["reply"]
    assert voice_server.balance(1) == before[0] - 500_00
    assert voice_server.balance(RAVI) == before[1] + 500_00


def test_a_pause_after_my_is_not_the_end_of_a_question(voice_server: VoiceServer) -> None:
    with VoiceClient(voice_server.socket_url()) as client:
        client.until("ready")
        with client.open_microphone():
            client.speak(paused("what is my", 0.7, "balance", "en-gb+m3"))
            reply = client.until("reply")
    transcripts = client.of_type("transcript")
    assert len(transcripts) == 1 and "balance" in words(transcripts[0]["text"])
    assert reply["reply"].startswith("Your current account balance is"), reply["reply"]


def test_a_pause_inside_a_bare_amount_is_not_the_end_of_the_answer(
    voice_server: VoiceServer,
) -> None:
    """ "seventy five … thousand": each piece is an amount; the answer is both."""
    with VoiceClient(voice_server.socket_url()) as client:
        client.until("ready")
        client.send({"type": "text", "text": "send money to Ravi"})
        asked = client.until("reply")
        with client.open_microphone():
            client.speak(paused("seventy five", 0.35, "thousand", "en-us"))
            read_back = client.until("reply")
    assert asked["data"]["awaiting"] == "amount", asked["reply"]
    assert "75,000 rupees to Ravi" in read_back["reply"], (client.of_type("transcript"), read_back)


def test_a_complete_command_is_answered_sooner_than_the_longest_wait(
    voice_server: VoiceServer,
) -> None:
    """Complete by its words: no 2-second wait."""
    with VoiceClient(voice_server.socket_url()) as client:
        client.until("ready")
        with client.open_microphone():
            client.speak(read_wav(cached_spoken_wav("check my balance", "en-us", 150, 50))[0])
            reply = client.until("reply")
    turn = voice_server.app.state.services.voice.settings.turn
    timings = reply["timings"]
    # The silence heard before the answer began is the pause that starts whisper, whisper's
    # time (slower on a busy machine) and the wait the judge chose: that wait was short.
    assert timings["endpoint_ms"] - timings["stt_compute_ms"] < turn.max_silence_ms / 2, timings


def test_a_pause_inside_a_transfer_on_the_phone_is_not_the_end_of_the_turn(
    voice_server: VoiceServer, tmp_path: Path
) -> None:
    """The same through Twilio Media Streams at 8 kHz μ-law, confirmed by keypad PIN."""
    wav = tmp_path / "paused.wav"
    write_wav(wav, paused("transfer five hundred rupees to", 0.9, "Ravi", "en-gb"), SAMPLE_RATE)
    before = voice_server.balance(1), voice_server.balance(RAVI)
    with TwilioPeer(voice_server.base_url, JOHN) as peer:
        sign_in(peer)  # the PIN first (phone.pin_first); typing it clears its prompt
        peer.wait_mark(1)  # the greeting, all sent
        greeted_at = peer.received.marks[0][0]
        said_at = peer.say(wav)
        peer.wait_mark(2)  # the one answer: "… Please type your PIN …"
        # (the keypad clears the prompt: not counted)
        cleared = [at for at in peer.received.clears if at > greeted_at]
        peer.press(PIN + "#")
        peer.wait(lambda: voice_server.balance(1) != before[0], 30, "the transfer")
    # Cut at the pause, the question "who to?" would have come in it, and been cleared.
    assert not peer.audio_between(greeted_at + 0.1, said_at), "answered inside the pause"
    assert cleared == []
    assert voice_server.balance(1) == before[0] - 500_00
    assert voice_server.balance(RAVI) == before[1] + 500_00


def long_reply(client: VoiceClient) -> None:
    """Ask by text for a reply that takes several seconds to say; return once it plays."""
    client.send({"type": "text", "text": "show my last ten transactions"})
    client.until("audio_start")


@pytest.mark.xfail(
    strict=False,
    reason="flaky (failed 1 run in 3 here): whisper tiny.en sometimes hears espeak-ng's "
    "'okay' / 'uh huh' as other words, which then stop the reply",
)
def test_backchannels_over_a_reply_do_not_stop_it(voice_server: VoiceServer) -> None:
    with VoiceClient(voice_server.socket_url()) as client:
        client.until("ready")
        with client.open_microphone():
            long_reply(client)
            # At espeak-ng's own rate (175 words a minute): "okay" is ~0.5 s of voice.
            gap = np.zeros(SAMPLE_RATE // 2, dtype=np.float32)
            okay, uh_huh = said("okay", "en+f2", 175), said("uh huh", "en-us", 175)
            client.speak(np.concatenate([okay, gap, uh_huh]))
            end = client.until("audio_end")
            time.sleep(1.5)  # time for a wrong turn to come
            client.send({"type": "ping"})
            client.until("pong")
    print(
        [
            e["type"] + ":" + str(e.get("text", e.get("reply", e.get("interrupted", ""))))
            for e in client.events
        ]
    )
    assert end["interrupted"] is False
    assert client.of_type("speech_start") == []
    assert client.of_type("transcript") == [] and len(client.of_type("reply")) == 1


def test_a_real_interruption_still_stops_the_reply(voice_server: VoiceServer) -> None:
    turn = voice_server.app.state.services.voice.settings.turn
    with VoiceClient(voice_server.socket_url()) as client:
        client.until("ready")
        with client.open_microphone():
            long_reply(client)
            client.speak(said("check my balance", "en-us"))
            stopped = client.until("audio_end")
            stopped_at = client.arrived[-1]
            answer = client.until("reply")
    assert stopped["interrupted"] is True
    # Within the barge-in wait, plus the VAD's start and a frame or two of the microphone,
    # from the first frame of speech sent.
    assert client.speech_sent_at is not None
    assert stopped_at - client.speech_sent_at < turn.barge_in_ms / 1000 + 0.5
    assert answer["reply"].startswith("Your current account balance is")


# voice.turn on (the default; set here all the same), with the barge-in wait that lets
# backchannels pass (voice.turn.barge_in_ms is 0 by default: any speech stops a reply).
TURN_ON = {"BANKBOT_VOICE__TURN__ENABLED": "true", "BANKBOT_VOICE__TURN__BARGE_IN_MS": "600"}


@pytest.fixture(scope="module")
def voice_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceServer]:
    """In demo mode, with voice.turn on."""
    with serving(
        tmp_path_factory.mktemp("voice"), {"BANKBOT_DEMO_MODE": "true", **TURN_ON}
    ) as server:
        yield server


@pytest.fixture(scope="module")
def judge() -> TurnJudge:
    settings = TurnSettings(
        enabled=True,
        model="smart-turn-v3.2-cpu",
        threshold=0.5,
        max_silence_ms=2000,
        amount_silence_ms=500,
        barge_in_ms=600,
        cpu_threads=1,
    )
    return TurnJudge(SmartTurn(require(settings.model)), settings)


def test_the_words_and_the_question_asked_decide_before_the_model(judge: TurnJudge) -> None:
    assert judge.by_words("Send 500 rupees to", None) is False
    assert judge.by_words("Send 500 rupees and um", None) is False
    assert judge.by_words("Send 500 rupees", None) is False  # to whom?
    assert judge.by_words("Send money to Ravi", None) is False  # how much?
    assert judge.by_words("Give Mom 3", None) is False  # … lakh
    assert judge.by_words("Send Ravi 1.5", None) is False  # … thousand
    assert judge.by_words("Send Ravi 500", None) is True
    assert judge.by_words("Send 5 rupees to Ravi", None) is True  # the amount is not last
    assert judge.by_words("Pay Jane.", None) is False  # … how much?
    assert judge.by_words("Can you transfer Mike?", None) is False
    assert judge.by_words("Ravi.", "receiver") is True  # the answer to "to whom?"
    assert judge.by_words("500", "amount") is True
    assert judge.by_words("Check my balance.", None) is True  # the rules read it whole
    assert judge.by_words("Show my last.", None) is False  # … five transactions
    assert judge.by_words("How much did I spend on?", None) is False  # … groceries
    assert judge.by_words("Could you show?", None) is False  # … my transactions
    assert judge.by_words("How much money do I?", None) is False  # … have
    assert judge.by_words("Kindly do one transfer of 20", None) is False  # … thousand to Jane
    assert judge.by_words("What is the weather like?", None) is None  # the model decides


def test_a_bare_amount_waits_longer_than_other_answers(judge: TurnJudge) -> None:
    """ "seventy five" may be followed by "thousand"; "Ravi" by nothing."""
    assert judge.settle_ms(True, "amount") == 500
    assert judge.settle_ms(True, "receiver") == judge.settle_ms(True, None) == 0
    assert judge.settle_ms(False, "amount") == 2000


def test_the_model_hears_a_finished_question_as_complete(judge: TurnJudge) -> None:
    silence = np.zeros(SAMPLE_RATE // 5, dtype=np.float32)
    finished = judge.by_model(np.concatenate([said("check my balance", "en-us"), silence]))
    assert finished.complete and finished.probability > 0.9


def test_only_acknowledgements_are_backchannels() -> None:
    assert is_backchannel("Mm-hmm.", None) and is_backchannel("Okay.", None)
    assert is_backchannel("Mm-m-m.", None) and is_backchannel("", None)  # no words: noise
    assert is_backchannel("Yeah, yeah.", "password")
    assert not is_backchannel("Stop.", None)
    assert not is_backchannel("Okay, check my balance.", None)
    assert not is_backchannel("Yes.", "confirmation")  # the answer to a yes/no question


@pytest.fixture(scope="module")
def llm_voice_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceServer]:
    """Rules, then the real local LLM (Qwen2.5 0.5B), as configured by default."""
    settings = {"BANKBOT_DEMO_MODE": "true", "BANKBOT_NLU__BACKENDS": "[rules, llm]"}
    with serving(tmp_path_factory.mktemp("voice"), settings) as server:
        llm = server.app.state.services.dialogue.assistant.nlu.stages[-1]
        assert llm.wait_until_loaded(180), "the LLM did not load in 180 s"
        yield server


def test_a_turn_for_the_llm_is_acknowledged_at_once(llm_voice_server: VoiceServer) -> None:
    """ "One moment." is heard before the reply the LLM stage reads; the reply names it."""
    budget_s = llm_voice_server.app.state.services.settings.llm.time_budget_s
    with VoiceClient(llm_voice_server.socket_url()) as client:
        client.until("ready")
        asked_at = time.monotonic()
        client.send({"type": "text", "text": "what will the weather be like tomorrow"})
        acknowledged = client.until("audio_end")
        heard_ack = client.reply_samples()
        reply = client.until("reply")
        answered_at = client.arrived[-1]
        client.until("audio_end")
    assert acknowledged["interrupted"] is False
    assert [e["type"] for e in client.events[1:3]] == ["audio_start", "audio_end"]
    stt = llm_voice_server.app.state.services.voice.stt
    ack = resample(heard_ack, 22050, SAMPLE_RATE)
    assert "moment" in words(stt.transcribe(ack).text)
    assert reply["source"] in {"llm", "rules"}  # the LLM's reading, or none sure: rules'
    assert answered_at - asked_at < budget_s + 3  # the stage's time limit holds
