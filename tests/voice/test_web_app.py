"""The web app at `/` in real headless Chromium: the page each reply names, accessibility
(axe-core's WCAG A/AA rules, the live region, labels, keyboard and focus), narrow screens.

Messages are typed here (the spoken path is tests/voice/test_widget.py's), so each test
costs a browser start and a few turns of the rules NLU; the replies are still spoken.
axe-core comes from the `axe-playwright-python` registry package (pinned), which ships
axe.min.js: nothing is fetched from a CDN.
"""

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, WebSocket, expect

from tests.voice.browser import NARROW, browser_page, say_typed, try_as_demo_user
from tests.voice.conftest import VoiceServer
from voice.audio import PIPELINE_RATE, write_wav

PASSWORD = "password123"  # every demo user's (data/demo_users.yaml)
PRIYA = 6  # the demo user with months of categorised spending (data/demo_users.yaml)
WCAG_AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


def replies_of(page: Page) -> list[dict[str, Any]]:
    """The `reply` events the page receives from /ws/voice, as they come."""
    replies: list[dict[str, Any]] = []

    def frame(payload: str | bytes) -> None:
        if isinstance(payload, str) and json.loads(payload).get("type") == "reply":
            replies.append(json.loads(payload))

    def opened(socket: WebSocket) -> None:
        socket.on("framereceived", frame)

    page.on("websocket", opened)
    return replies


def axe_violations(page: Page) -> str:
    """axe-core's report of the WCAG 2.1 A and AA rules the page breaks ("" when none)."""
    results = Axe().run(page, options=WCAG_AA)
    return "" if results.violations_count == 0 else results.generate_report()


def silent_microphone(directory: Path) -> Path:
    """A microphone that hears a quiet room: nobody speaks."""
    path = directory / "silence.wav"
    write_wav(path, np.zeros(PIPELINE_RATE, dtype=np.float32), PIPELINE_RATE)
    return path


def test_a_spending_question_draws_the_categories_of_the_answer(
    voice_server: VoiceServer,
) -> None:
    with browser_page(allowed=False) as (page, problems):
        replies = replies_of(page)
        try_as_demo_user(page, voice_server.base_url, PRIYA)
        say_typed(page, "how much did I spend last month")
        data = replies[-1]["data"]
        categories = [item["name"] for item in data["spending_by_category"]]
        assert len(categories) >= 2  # Priya's history has several
        expect(page.locator("#page-heading")).to_have_text("Spending last month")
        expect(page.locator(".bar-name")).to_have_text(categories)
        widths = [
            float(bar.evaluate("(node) => node.getBoundingClientRect().width"))
            for bar in page.locator(".bar").all()
        ]
        assert widths == sorted(widths, reverse=True) and widths[0] > widths[-1]  # to scale
        expect(page.locator(".spending .total")).to_contain_text("Total ₹")
    assert problems == []


def test_a_statement_lists_date_counterparty_category_and_amount(
    voice_server: VoiceServer,
) -> None:
    with browser_page(allowed=False) as (page, problems):
        replies = replies_of(page)
        try_as_demo_user(page, voice_server.base_url, PRIYA)
        say_typed(page, "show my last 3 transactions")
        entries = replies[-1]["data"]["transactions"]
        expect(page.locator("#page-heading")).to_have_text("Statement")
        rows = page.locator(".statement tbody tr")
        expect(rows).to_have_count(3)
        first = rows.first.locator("td")
        expect(first.nth(0)).to_have_text(entries[0]["timestamp"][:10])
        expect(first.nth(1)).to_have_text(entries[0]["counterparty"])
        expect(first.nth(2)).to_have_text(entries[0]["category"])
        expect(first.nth(3)).to_contain_text(f"{entries[0]['amount']:,.2f}")
    assert problems == []


def test_a_large_transfer_waits_for_a_yes_before_the_password_field_appears(
    voice_server: VoiceServer,
) -> None:
    with browser_page(allowed=False) as (page, problems):
        try_as_demo_user(page, voice_server.base_url, PRIYA)
        say_typed(page, "send 25000 to jane")  # above transfers.confirm_above_rupees
        card = page.locator("#page")
        expect(card.locator(".facts")).to_contain_text("Jane")
        expect(card.locator(".facts")).to_contain_text("₹25,000.00")
        expect(card.locator(".state")).to_have_text(
            "Waiting for an explicit yes before it goes on."
        )
        password = page.get_by_label("Password to confirm the transfer")
        expect(password).to_be_hidden()
        say_typed(page, "yes")
        expect(card.locator(".state")).to_have_text("Waiting for your password.")
        expect(password).to_be_visible()
    assert problems == []


def test_signed_in_a_completed_transfer_lists_its_unread_notification(
    voice_server: VoiceServer,
) -> None:
    with browser_page(allowed=False) as (page, problems):
        page.goto(f"{voice_server.base_url}/")
        page.get_by_label("Email").fill("jane@example.com")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#app")).to_have_attribute("data-state", "idle", timeout=15_000)
        say_typed(page, "send 100 to john")
        password = page.get_by_label("Password to confirm the transfer")
        password.fill(PASSWORD)
        password.press("Enter")
        expect(page.locator("#page .state")).to_have_text(
            "Sent. Your balance is ₹4,900.00.", timeout=30_000
        )
        notifications = page.get_by_role("region", name="Notifications")
        expect(notifications).to_contain_text("Money sent")
        assert PASSWORD not in page.content()
    assert problems == []


def test_accessibility_axe_live_region_labels_and_focus(
    voice_server: VoiceServer, tmp_path: Path
) -> None:
    with browser_page(silent_microphone(tmp_path)) as (page, problems):
        page.goto(f"{voice_server.base_url}/")
        assert axe_violations(page) == ""  # the sign-in view
        page.get_by_label("Demo user").fill("1")
        page.get_by_label("Demo user").press("Enter")
        mic = page.get_by_role("button", name="Talk")
        expect(mic).to_be_focused()  # the first thing to do after signing in
        expect(page.locator("#app")).to_have_attribute("data-state", "idle", timeout=15_000)
        # Keyboard only: the shortcut turns the microphone on and off.
        page.keyboard.press("Alt+m")
        expect(page.locator("#app")).to_have_attribute("data-state", "listening")
        expect(page.get_by_role("button", name="Stop")).to_be_focused()
        expect(page.locator("#mic-state")).to_have_text("Listening…")
        page.keyboard.press("Alt+m")
        expect(page.locator("#app")).to_have_attribute("data-state", "idle")
        expect(mic).to_be_focused()
        # Tab order: microphone, hands-free switch, message field; Enter sends.
        page.keyboard.press("Tab")
        expect(page.get_by_label("Hands-free: keep listening after each answer")).to_be_focused()
        page.keyboard.press("Tab")
        typed = page.get_by_label("Type a message")
        expect(typed).to_be_focused()
        live = page.locator("#announcer")
        assert live.get_attribute("aria-live") == "polite"
        page.keyboard.type("what is my balance")
        page.keyboard.press("Enter")
        expect(live).to_have_text(re.compile(r"^Assistant: Your current account balance is \d+"))
        say_typed(page, "send 500 to mom")
        expect(live).to_contain_text("Please confirm with your password")
        expect(page.get_by_label("Password to confirm the transfer")).to_be_focused()
        # Every control has a name, contrast and the rest: axe-core on the assistant view.
        assert axe_violations(page) == ""
        unlabeled = page.evaluate(
            """() => [...document.querySelectorAll("input, button, meter")]
                .filter((node) => node.offsetParent !== null)
                .filter((node) => !(node.labels && node.labels.length)
                    && !node.getAttribute("aria-label") && !node.textContent.trim())
                .map((node) => node.outerHTML)"""
        )
        assert unlabeled == []
        # A visible focus ring on whatever has the keyboard.
        outline = typed.evaluate(
            "(node) => { node.focus(); return getComputedStyle(node).outlineStyle; }"
        )
        assert outline == "solid"
    assert problems == []


@pytest.mark.parametrize("viewport", [NARROW], ids=["360px"])
def test_usable_at_360_px(voice_server: VoiceServer, viewport: dict[str, int]) -> None:
    with browser_page(allowed=False, viewport=viewport) as (page, problems):
        try_as_demo_user(page, voice_server.base_url, PRIYA)
        for question in ("how much did I spend last month", "show my last 5 transactions"):
            say_typed(page, question)
            width = page.evaluate("() => document.documentElement.scrollWidth")
            assert width <= viewport["width"], f"{question!r}: {width} px wide"
        expect(page.get_by_role("button", name="Talk")).to_be_in_viewport()
    assert problems == []
