"""/docs and /redoc in real headless Chromium (Debian's) with no network beyond the server:
every request to another host is refused and recorded, so a page that needs a CDN shows
nothing and fails here."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, Route, expect

from server import create_app
from tests.conftest import serving, settings_for
from tests.voice.browser import browser_page


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = tmp_path_factory.mktemp("docs") / "bank.db"
    with serving(create_app(settings_for(f"sqlite:///{database}"))) as url:
        yield url


@pytest.fixture
def offline_page(base_url: str) -> Iterator[tuple[Page, list[str]]]:
    """A page that may reach the server only; its list of problems: requests it tried to
    send elsewhere, console errors (a Content-Security-Policy refusal is one) and page
    errors."""

    def only_the_server(route: Route) -> None:
        if route.request.url.startswith(f"{base_url}/"):
            route.continue_()
        else:
            problems.append(f"off the machine: {route.request.url}")
            route.abort("internetdisconnected")

    with browser_page() as (page, problems):
        page.route("**/*", only_the_server)
        yield page, problems


def operations(page: Page, base_url: str) -> list[tuple[str, str]]:
    schema = page.request.get(f"{base_url}/openapi.json").json()
    return [(method, path) for path, item in schema["paths"].items() for method in item]


def test_swagger_ui_lists_every_operation_offline(
    offline_page: tuple[Page, list[str]], base_url: str
) -> None:
    page, problems = offline_page
    page.goto(f"{base_url}/docs")
    expect(page.locator(".opblock")).to_have_count(len(operations(page, base_url)))
    transfer = page.locator(".opblock-post", has_text="/api/v1/accounts/{account_id}/transactions")
    expect(transfer).to_contain_text("Create Transaction")
    expect(page.locator(".information-container")).to_contain_text("Voice Banking Assistant")
    assert problems == []


def test_redoc_renders_the_reference_offline(
    offline_page: tuple[Page, list[str]], base_url: str
) -> None:
    page, problems = offline_page
    page.goto(f"{base_url}/redoc")
    expect(page.get_by_role("heading", name="Create Transaction")).to_be_visible(timeout=30_000)
    expect(page.locator("h1").first).to_contain_text("Voice Banking Assistant")
    # ReDoc always asks its CDN for the logo of its "API docs by Redocly" link: the page's
    # policy refuses it before any request is made (the route above saw none), and ReDoc
    # then leaves the logo out. That refusal is the one console error allowed.
    logo = "'https://cdn.redoc.ly/redoc/logo-mini.svg' violates the following Content Security"
    assert [problem for problem in problems if logo not in problem] == []
