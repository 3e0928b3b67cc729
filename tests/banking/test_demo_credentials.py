"""The published demo password and PIN work in demo mode only (config.yaml's defaults)."""

import re

import pytest
from fastapi.testclient import TestClient

from server import create_app
from tests.conftest import settings_for

# config.yaml's own choice, which the rest of the suite overrides (tests/conftest.py).
DEFAULT = {"BANKBOT_DEMO_CREDENTIALS": "random"}
SHOWN = re.compile(r"random password and telephone PIN .*: password (\S+), PIN (\d+)\.")


def log_in(client: TestClient, password: str) -> int:
    form = {"username": "john@example.com", "password": password}
    return client.post("/api/auth/login", data=form).status_code


def pin_works(client: TestClient, pin: str) -> bool:
    return client.app.state.services.bank.directory.check_factor(1, pin, "pin")


def test_outside_demo_mode_the_published_password_and_pin_do_not_work(
    sqlite_url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    with TestClient(create_app(settings_for(sqlite_url, **DEFAULT))) as client:
        assert log_in(client, "password123") == 401
        assert not pin_works(client, "1234")
        # The random ones, printed once on the console, work.
        shown = SHOWN.search(capfd.readouterr().err)
        assert shown is not None
        password, pin = shown.groups()
        assert log_in(client, password) == 200
        assert pin_works(client, pin)
    with TestClient(create_app(settings_for(sqlite_url, **DEFAULT))) as client:
        assert SHOWN.search(capfd.readouterr().err) is None  # not shown again
        assert log_in(client, password) == 200


def test_in_demo_mode_the_published_password_works(sqlite_url: str) -> None:
    settings = settings_for(sqlite_url, BANKBOT_DEMO_MODE="1", **DEFAULT)
    with TestClient(create_app(settings)) as client:
        assert log_in(client, "password123") == 200
        assert pin_works(client, "1234")


def test_demo_users_of_a_demo_mode_start_lose_the_published_password(
    sqlite_url: str, capfd: pytest.CaptureFixture[str]
) -> None:
    """A database first started in demo mode, then served outside it."""
    demo = settings_for(sqlite_url, BANKBOT_DEMO_MODE="1", **DEFAULT)
    with TestClient(create_app(demo)) as client:
        assert log_in(client, "password123") == 200
    capfd.readouterr()
    with TestClient(create_app(settings_for(sqlite_url, **DEFAULT))) as client:
        assert log_in(client, "password123") == 401
        assert not pin_works(client, "1234")
        shown = SHOWN.search(capfd.readouterr().err)
        assert shown is not None
        assert log_in(client, shown.group(1)) == 200
