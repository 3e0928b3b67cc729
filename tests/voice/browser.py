"""Debian's headless Chromium driven by Playwright, for the web app's tests and screenshots.

The microphone is Chromium's fake capture device: a WAV file (`microphone`) played in a
loop, or its beeps when none is given. Playwright's own browser download is never used.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import ConsoleMessage, Page, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
]
GRANT_MICROPHONE = "--use-fake-ui-for-media-stream"  # allows it without asking the user
WIDE = {"width": 1280, "height": 800}
NARROW = {"width": 360, "height": 740}


@contextmanager
def browser_page(
    microphone: Path | None = None,
    allowed: bool = True,
    viewport: dict[str, int] | None = None,
) -> Iterator[tuple[Page, list[str]]]:
    """A page in headless Chromium and the console errors and page errors it logs
    (a CSP refusal is one).

    `allowed=False`: the user refuses the page the microphone."""
    flags = [*CHROMIUM_FLAGS, *([GRANT_MICROPHONE] if allowed else [])]
    if microphone is not None:
        flags.append(f"--use-file-for-fake-audio-capture={microphone}")
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=flags)
        page = browser.new_page(viewport=viewport or WIDE)

        def console(message: ConsoleMessage) -> None:
            if message.type == "error":
                problems.append(f"console: {message.text}")

        page.on("console", console)
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        try:
            yield page, problems
        finally:
            browser.close()


def try_as_demo_user(page: Page, base_url: str, user_id: int = 1) -> None:
    """Open the app on a server in demo mode and start a conversation as a demo user."""
    page.goto(f"{base_url}/")
    page.get_by_label("Demo user").fill(str(user_id))
    page.get_by_role("button", name="Try as demo user").click()
    expect(page.locator("#app")).to_have_attribute("data-state", "idle", timeout=15_000)


def say_typed(page: Page, text: str) -> None:
    """Type a message and wait for its answer (one more reply on the page)."""
    app = page.locator("#app")
    before = int(app.get_attribute("data-replies") or 0)
    typed = page.get_by_label("Type a message")
    typed.fill(text)
    typed.press("Enter")
    expect(app).to_have_attribute("data-replies", str(before + 1), timeout=30_000)
