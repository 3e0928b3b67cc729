"""The web app's voice path in real headless Chromium (Debian's), its microphone a WAV file.

Chromium plays `--use-file-for-fake-audio-capture` in a loop as the microphone; each file
is padded with long silence so that one pass is one utterance and the reply is heard out
before the words come round again. The browser's own processing (noise suppression,
automatic gain) is still settling during the first pass, which whisper tiny.en sometimes
mishears ("Kirk my balance"): the tests wait for the answer over a few passes, as a person
would repeat themselves. tests/voice/test_web_app.py covers the page itself (cards,
accessibility, narrow screens) with typed messages.
"""

from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from tests.voice.browser import browser_page, try_as_demo_user
from tests.voice.conftest import VoiceServer
from tests.voice.spoken import spoken_wav

PASSWORD = "password123"  # every demo user's (data/demo_users.yaml)
TRANSFER = "send five hundred rupees to mom"
SPEED = 130  # espeak-ng words a minute: clear enough for whisper tiny.en
SILENCE_S = (1.0, 7.0)  # before and after the words in a microphone file


def speak_to_app(page: Page, server: VoiceServer) -> None:
    """As demo user 1, turn the microphone on (hands-free, the default)."""
    try_as_demo_user(page, server.base_url)
    page.get_by_role("button", name="Talk").click()
    expect(page.locator("#app")).to_have_attribute("data-state", "listening", timeout=15_000)


def test_spoken_balance_question_shows_the_balance_card_and_a_bubble_pair(
    voice_server: VoiceServer, tmp_path: Path
) -> None:
    microphone = spoken_wav(
        "check my balance", tmp_path / "balance.wav", speed=SPEED, pad_s=SILENCE_S
    )
    with browser_page(microphone) as (page, problems):
        speak_to_app(page, voice_server)
        answer = page.locator(".bubble.assistant").last
        expect(answer).to_contain_text("Your current account balance is", timeout=60_000)
        said = page.locator(".bubble.user").last  # the bubble just before the answer
        assert "balance" in said.inner_text().lower()
        expect(page.locator("#page-heading")).to_have_text("Balance")
        expect(page.locator(".balance .amount")).to_have_text("₹10,000.00")
        expect(page.locator("#announcer")).to_contain_text("Your current account balance is")
        # The reply's audio went through the page's audio clock: chunks were scheduled and
        # at least one played to its end; the button showed the assistant speaking.
        app = page.locator("#app")
        expect(app).not_to_have_attribute("data-audio-played-ms", "0", timeout=15_000)
        assert int(app.get_attribute("data-audio-chunks") or 0) > 0
        expect(page.locator("#password-form")).to_be_hidden()
        expect(page.locator("#error")).to_be_hidden()
    assert problems == []


def test_spoken_transfer_shows_the_transfer_card_then_the_password_and_moves_money_once(
    voice_server: VoiceServer, tmp_path: Path
) -> None:
    before = voice_server.balance(1)
    microphone = spoken_wav(TRANSFER, tmp_path / "send.wav", speed=SPEED, pad_s=SILENCE_S)
    logged: list[str] = []
    with browser_page(microphone) as (page, problems):
        page.on("console", lambda message: logged.append(message.text))
        speak_to_app(page, voice_server)
        expect(page.locator(".bubble.assistant").last).to_contain_text(
            "Please confirm with your password", timeout=60_000
        )
        card = page.locator("#page")
        expect(page.locator("#page-heading")).to_have_text("Transfer")
        expect(card.locator(".facts")).to_contain_text("Mom")
        expect(card.locator(".facts")).to_contain_text("₹500.00")
        expect(card).to_contain_text("Waiting for your password.")
        password = page.get_by_label("Password to confirm the transfer")
        expect(password).to_be_visible()
        expect(password).to_be_focused()  # the keyboard user can type at once
        password.fill(PASSWORD)
        password.press("Enter")
        expect(page.locator(".bubble.assistant").last).to_contain_text(
            "Successfully transferred 500 rupees to Mom", timeout=30_000
        )
        expect(card.locator(".state")).to_have_text("Sent. Your balance is ₹9,500.00.")
        expect(password).to_be_hidden()
        expect(password).to_have_value("")
        expect(page.locator(".bubble.user.secret p").first).to_have_text("••••••")
        assert PASSWORD not in page.content()
    assert voice_server.balance(1) == before - 500_00
    assert not any(PASSWORD in text for text in logged)
    assert problems == []


def test_wrong_user_shows_the_servers_error(voice_server: VoiceServer) -> None:
    with browser_page() as (page, _problems):
        page.goto(f"{voice_server.base_url}/")
        page.get_by_label("Demo user").fill("999")
        page.get_by_role("button", name="Try as demo user").click()
        expect(page.get_by_role("alert")).to_have_text("User not found. Please log in again.")
        expect(page.get_by_role("status")).to_contain_text("Disconnected")
        expect(page.locator("#app")).to_have_attribute("data-state", "offline")
        expect(page.get_by_role("button", name="Talk")).to_be_disabled()
        expect(page.get_by_role("button", name="Reconnect")).to_be_visible()


# The worklet at other context rates: a 1 kHz tone must come through at 16 kHz at full
# level, and a 12 kHz tone (above 16 kHz's Nyquist frequency) must not fold back to 4 kHz.
RESAMPLE_SCRIPT = """async (rate) => {
  const seconds = 2;
  const context = new OfflineAudioContext(1, rate * seconds, rate);
  await context.audioWorklet.addModule("/voice-static/capture-worklet.js");
  const buffer = context.createBuffer(1, rate * seconds, rate);
  const samples = buffer.getChannelData(0);
  for (let i = 0; i < samples.length; i++) {
    samples[i] = 0.4 * Math.sin((2 * Math.PI * 1000 * i) / rate)
               + 0.4 * Math.sin((2 * Math.PI * 12000 * i) / rate);
  }
  const source = context.createBufferSource();
  source.buffer = buffer;
  const node = new AudioWorkletNode(context, "capture-processor", {
    numberOfInputs: 1, numberOfOutputs: 0, channelCount: 1, channelCountMode: "explicit",
    processorOptions: { targetRate: 16000, frameSamples: 1600 },
  });
  const frames = [];
  node.port.onmessage = (event) => frames.push(Array.from(new Int16Array(event.data)));
  source.connect(node);
  source.start();
  await context.startRendering();
  await new Promise((resolve) => setTimeout(resolve, 500));  // the last posted frames
  return frames;
}"""


@pytest.mark.parametrize("rate", [48_000, 44_100])
def test_capture_worklet_resamples_to_16_khz_without_aliasing(
    voice_server: VoiceServer, rate: int
) -> None:
    with browser_page() as (page, problems):
        page.goto(f"{voice_server.base_url}/")
        frames = page.evaluate(RESAMPLE_SCRIPT, rate)
    assert problems == []
    assert len(frames) >= 18 and {len(frame) for frame in frames} == {1600}  # 100 ms each
    samples = np.concatenate([np.array(frame, dtype=np.float64) for frame in frames]) / 32768
    second = samples[1600:17600]  # one second, past the filter's start
    spectrum = np.abs(np.fft.rfft(second * np.hanning(second.size))) / (second.size / 4)
    assert spectrum[1000] == pytest.approx(0.4, rel=0.02)
    assert spectrum[4000] < 0.4 / 1000  # the folded 12 kHz tone, at least 60 dB down


def test_speech_over_the_reply_stops_it_and_is_answered(
    voice_server: VoiceServer, tmp_path: Path
) -> None:
    """Barge-in: the words come round again while the reply is still playing."""
    microphone = spoken_wav(
        "check my balance", tmp_path / "again.wav", speed=SPEED, pad_s=(0.5, 1.5)
    )
    with browser_page(microphone) as (page, problems):
        speak_to_app(page, voice_server)
        app = page.locator("#app")
        expect(app).not_to_have_attribute("data-audio-interruptions", "0", timeout=60_000)
        expect(app).not_to_have_attribute("data-barge-ins", "0")
        expect(app).to_have_attribute("data-playing", "false")
        answered = app.get_attribute("data-replies")  # the answer to the barge-in comes next
        expect(app).not_to_have_attribute("data-replies", answered or "0", timeout=30_000)
        expect(page.locator(".bubble.assistant").last).to_contain_text(
            "Your current account balance is"
        )
    assert problems == []


def test_a_refused_microphone_is_said_and_the_user_can_type(voice_server: VoiceServer) -> None:
    with browser_page(allowed=False) as (page, problems):
        try_as_demo_user(page, voice_server.base_url)
        page.get_by_role("button", name="Talk").click()
        expect(page.get_by_role("alert")).to_have_text(
            "The microphone was refused. Allow it in the browser's site settings, or type instead."
        )
        expect(page.locator("#app")).to_have_attribute("data-state", "idle")
        typed = page.get_by_label("Type a message")
        expect(typed).to_be_focused()
        typed.fill("what is my balance")
        typed.press("Enter")
        expect(page.locator(".bubble.user p")).to_have_text(["what is my balance"])
        expect(page.locator(".bubble.assistant").last).to_contain_text(
            "Your current account balance is"
        )
        app = page.locator("#app")
        expect(app).not_to_have_attribute("data-audio-played-ms", "0", timeout=15_000)
    assert problems == []


def test_a_signed_in_user_talks_with_their_token(secured_voice_server: VoiceServer) -> None:
    """Tokens required (the default): the app logs in, and the password goes nowhere else."""
    with browser_page(allowed=False) as (page, problems):
        page.goto(f"{secured_voice_server.base_url}/")
        expect(page.get_by_label("Demo user")).to_be_hidden()  # not in demo mode
        page.get_by_label("Email").fill("jane@example.com")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#who")).to_have_text("Signed in as jane@example.com")
        expect(page.locator("#app")).to_have_attribute("data-state", "idle")
        typed = page.get_by_label("Type a message")
        typed.fill("what is my balance")
        typed.press("Enter")
        expect(page.locator(".bubble.assistant p")).to_have_text(
            ["Your current account balance is 5,000 rupees."]
        )
        assert PASSWORD not in page.content()
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_label("Email")).to_be_focused()
        expect(page.locator(".bubble")).to_have_count(0)
    assert problems == []


def test_a_wrong_password_does_not_sign_in(secured_voice_server: VoiceServer) -> None:
    with browser_page(allowed=False) as (page, problems):
        page.goto(f"{secured_voice_server.base_url}/")
        page.get_by_label("Email").fill("jane@example.com")
        page.get_by_label("Password", exact=True).fill("not-her-password-1")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_be_visible()
        expect(page.locator("#sign-in-view")).to_be_visible()
        expect(page.locator("#assistant-view")).to_be_hidden()
    assert [p for p in problems if "401" not in p] == []  # the refused login itself
