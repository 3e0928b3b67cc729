"""The microphone client's live path: real devices through a real sound server.

The client runs at a pseudo-terminal and opens the default input and output devices
through PortAudio, which reach a private PulseAudio (tests/voice/sound_server.py): espeak-ng
speech is written into its microphone at real time, and what the client plays is recorded
from its speaker and heard by whisper. Only the sound card is missing.
"""

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.voice.conftest import VoiceServer
from tests.voice.sound_server import SoundServer, missing_programs, sound_server
from tests.voice.spoken import cached_spoken_wav, words
from tests.voice.terminal import Terminal
from voice.audio import read_wav

ROOT = Path(__file__).resolve().parents[2]
EMAIL, PASSWORD = "john@example.com", "password123"  # demo user 1 (data/demo_users.yaml)
BARGE_IN_BUDGET_S = 0.9  # speech over a reply → the reply no longer heard (as on the phone)

pytestmark = pytest.mark.skipif(
    bool(missing_programs()),
    reason=f"no sound server to run the client against: {missing_programs()} not installed "
    "(`make test` installs pulseaudio and pulseaudio-utils)",
)


@pytest.fixture(scope="module")
def sound(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoundServer]:
    with sound_server(tmp_path_factory.mktemp("pulse")) as server:
        yield server


def spoken(text: str, voice: str = "en-us") -> np.ndarray:
    """espeak-ng's speech at 16 kHz, cut to the words (the clips have silence around them)."""
    samples, _ = read_wav(cached_spoken_wav(text, voice, 150, 50))
    loud = np.flatnonzero(np.abs(samples) > 0.02)
    return samples[loud[0] : loud[-1] + 1]


def client(sound: SoundServer, voice_server: VoiceServer, *flags: str) -> Terminal:
    url = voice_server.socket_url().split("?")[0]
    argv = [sys.executable, "-m", "voice.mic_client", "--url", url, *flags]
    return Terminal(argv, sound.env, ROOT)


def signed_in(sound: SoundServer, voice_server: VoiceServer, *flags: str) -> Terminal:
    """The client logged in by --email, the password typed at its hidden prompt."""
    terminal = client(sound, voice_server, "--email", EMAIL, *flags)
    terminal.expect(f"Password for {EMAIL} (hidden): ")
    terminal.type(PASSWORD + "\n")
    terminal.expect("connected to")
    return terminal


def heard(voice_server: VoiceServer, audio: np.ndarray) -> set[str]:
    return set(words(voice_server.app.state.services.voice.stt.transcribe(audio).text))


def test_list_devices_shows_the_sound_servers_devices(
    sound: SoundServer, voice_server: VoiceServer
) -> None:
    terminal = client(sound, voice_server, "--list-devices")
    assert terminal.wait() == 0
    assert "pulse" in terminal.screen and "(default input, default output)" in terminal.screen


def test_a_device_that_is_not_there_is_named_and_exits_2(
    sound: SoundServer, voice_server: VoiceServer
) -> None:
    terminal = client(sound, voice_server, "--input-device", "studio mic", "--user-id", "1")
    assert terminal.wait() == 2
    assert "no input device is named 'studio mic'; --list-devices shows them" in terminal.screen
    assert "Traceback" not in terminal.screen


def test_a_refused_login_and_a_refused_token_exit_3(
    sound: SoundServer, voice_server: VoiceServer
) -> None:
    terminal = client(sound, voice_server, "--email", EMAIL)
    terminal.expect("(hidden): ")
    terminal.type("not-the-password\n")
    assert terminal.wait() == 3
    assert "login refused: Incorrect email or password." in terminal.screen
    terminal = client(sound, voice_server, "--token", "forged")
    assert terminal.wait() == 3
    assert "the server refused the connection" in terminal.screen
    assert "Traceback" not in terminal.screen


def test_a_spoken_balance_question_and_transfer_through_the_sound_server(
    sound: SoundServer, voice_server: VoiceServer
) -> None:
    """Logged in by email, the microphone open the whole time: the reply is played on the
    speaker, and the transfer is confirmed at the hidden prompt."""
    before = voice_server.balance(1)
    terminal = signed_in(sound, voice_server, "--input-device", "pulse")
    shown = terminal.expect("listening")
    with sound.recording() as speaker:
        _, spoke_until = sound.microphone.say(spoken("check my balance"))
        answer, nothing = "assistant: Your current account balance is", "(no words heard)"
        deadline = time.monotonic() + 60
        while terminal.screen.find(answer, shown) < 0:
            # An open bug (issue 15): in the whole-suite run only, this first command is
            # now and then transcribed as nothing. A person says it again; so does the test.
            if (missed := terminal.screen.find(nothing, shown)) >= 0:
                print("the first command was heard as nothing; said again")
                shown = missed + len(nothing)
                _, spoke_until = sound.microphone.say(spoken("check my balance"))
            assert time.monotonic() < deadline, terminal.screen
            time.sleep(0.1)
        shown = terminal.expect(answer, after=shown)
        shown = terminal.expect("first audio played", after=shown)
        time.sleep(4)  # the reply plays out
    assert {"balance", "rupees"} & heard(voice_server, speaker.audio(since=spoke_until))
    sound.microphone.say(spoken("send five hundred rupees to mom", "en-us+f2"))
    shown = terminal.expect("Please confirm with your password", after=shown)
    shown = terminal.expect("Password (hidden): ", after=shown)
    terminal.type(PASSWORD + "\n")
    terminal.expect("assistant: Successfully transferred 500 rupees to Mom.", after=shown)
    assert terminal.quit() == 0
    assert PASSWORD not in terminal.screen
    assert voice_server.balance(1) == before - 500_00


def test_speaking_over_a_reply_stops_the_speaker(
    sound: SoundServer, voice_server: VoiceServer
) -> None:
    terminal = signed_in(sound, voice_server)
    shown = terminal.expect("listening")
    # Long enough to hear the reply stop; whisper heard it right at 16 of 16 clip offsets tried
    # (its first try, "what is my current account balance please", in 5 of 16 offsets).
    question = spoken("how much money is in my account right now", "en-us+m3")
    with sound.recording() as speaker:
        _, spoke_until = sound.microphone.say(spoken("show my last ten transactions"))
        shown = terminal.expect("assistant:", after=shown)
        while not speaker.loud(since=spoke_until):
            time.sleep(0.02)
        time.sleep(1.5)  # the statement (several seconds of it) is playing
        started, ended = sound.microphone.say(question)
        terminal.expect("(reply interrupted)", after=shown)
        terminal.expect("assistant: Your current account balance is", after=shown)
    playing = speaker.loud(since=started - 1.0, until=started)
    still_playing = speaker.loud(since=started + BARGE_IN_BUDGET_S, until=ended + 0.3)
    last = max(speaker.loud(since=started, until=ended + 0.3), default=started)
    print(f"the reply was last heard {last - started:.2f} s after the speech began")
    assert len(playing) > 15  # the reply was being heard (of 50 chunks in that second)
    assert not still_playing, f"heard {len(still_playing)} chunks after {BARGE_IN_BUDGET_S} s"
    assert terminal.quit() == 0


def test_push_to_talk_sends_only_between_presses_of_the_space_bar(
    sound: SoundServer, voice_server: VoiceServer
) -> None:
    terminal = signed_in(sound, voice_server, "--push-to-talk")
    shown = terminal.expect("press space to talk")
    sound.microphone.say(spoken("check my balance"))
    time.sleep(1.5)  # long past the hang-over: an open microphone would have been answered
    assert "you:" not in terminal.screen[shown:]
    terminal.type(" ")
    shown = terminal.expect("listening", after=shown)
    # Released a moment after the last word, as a person does: the sound server's and
    # PortAudio's buffers hold the end of the words for a while on a busy machine.
    after = np.zeros(round(0.8 * 16000), dtype=np.float32)
    sound.microphone.say(np.concatenate([spoken("check my balance", "en-us+f2"), after]))
    terminal.type(" ")
    terminal.expect("assistant: Your current account balance is", after=shown)
    assert terminal.quit() == 0
