"""`make screenshots`: the web app through a short typed conversation, as PNGs at 1280 and
360 px wide in docs/screenshots/ (committed; the README shows the wide one).

The same real server and headless Chromium as the browser tests (a demo-mode server with
a fresh database, the rules NLU, the real speech models); not part of the test run.

    .venv/bin/python -m tests.voice.screenshots [--out docs/screenshots]
"""

import argparse
import tempfile
from pathlib import Path

from tests.voice.browser import NARROW, WIDE, browser_page, say_typed, try_as_demo_user
from tests.voice.conftest import serving

ROOT = Path(__file__).resolve().parents[2]
PRIYA = 6  # the demo user with months of categorised spending


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as directory,
        serving(Path(directory), {"BANKBOT_DEMO_MODE": "true"}) as server,
    ):
        with browser_page(allowed=False, viewport=WIDE) as (page, _problems):
            try_as_demo_user(page, server.base_url, PRIYA)
            say_typed(page, "what is my balance")
            say_typed(page, "how much did I spend last month")
            page.screenshot(path=out / "web-app-1280.png")
        with browser_page(allowed=False, viewport=NARROW) as (page, _problems):
            try_as_demo_user(page, server.base_url, 1)
            say_typed(page, "send 500 to mom")
            page.locator("#page").scroll_into_view_if_needed()
            page.screenshot(path=out / "web-app-360.png", full_page=True)
    for name in ("web-app-1280.png", "web-app-360.png"):
        print(out / name)


if __name__ == "__main__":
    main()
