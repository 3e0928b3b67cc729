"""Login and registration limits: per email (423 lockout) and per client address (429),
counted in Redis so that every server process agrees, each attempt counted before bcrypt."""

import concurrent.futures
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from server import create_app
from tests.conftest import REDIS_URL, settings_for

JOHN = "john@example.com"
PASSWORD = "password123"
LOCKED = "Too many wrong passwords: logins to this account are locked for 15 minutes."


def log_in(client: TestClient, email: str = JOHN, password: str = PASSWORD) -> httpx.Response:
    return client.post("/api/auth/login", data={"username": email, "password": password})


@pytest.fixture
def shared(sqlite_url: str, redis_prefix: str) -> dict[str, str]:
    """Settings of server processes that share one database and one Redis."""
    return {"REDIS_URL": REDIS_URL, "BANKBOT_SESSIONS__KEY_PREFIX": redis_prefix}


@pytest.fixture
def two_apps(sqlite_url: str, shared: dict[str, str]) -> Iterator[tuple[TestClient, TestClient]]:
    with (
        TestClient(create_app(settings_for(sqlite_url, **shared))) as first,
        TestClient(create_app(settings_for(sqlite_url, **shared))) as second,
    ):
        yield first, second


def test_five_wrong_passwords_lock_the_email_on_every_server(
    two_apps: tuple[TestClient, TestClient],
) -> None:
    first, second = two_apps
    for client in (first, second, first, second):
        assert log_in(client, password="guess-1234").status_code == 401
    fifth = log_in(first, password="guess-1234")
    assert fifth.status_code == 423
    body = fifth.json()
    assert (body["status"], body["error_code"]) == ("error", "ACCOUNT_LOCKED")
    assert body["message"].startswith(LOCKED)
    assert 890 <= body["retry_after"] <= 900
    assert fifth.headers["Retry-After"] == str(body["retry_after"])
    # Locked on the other server too, even with the right password.
    right = log_in(second)
    assert right.status_code == 423 and right.json()["error_code"] == "ACCOUNT_LOCKED"
    # Another account logs in; the locked user's transfers are not locked (a stranger who
    # knows an email must not be able to stop its payments).
    assert log_in(first, "jane@example.com").status_code == 200
    assert not first.app.state.services.bank.guard.locked(1)


def test_an_unknown_email_is_locked_the_same_way(client: TestClient) -> None:
    """So the lock does not tell which emails are registered."""
    answers = [log_in(client, "nobody@example.com", "guess-1234") for _ in range(6)]
    assert [answer.status_code for answer in answers] == [401] * 4 + [423] * 2


def test_simultaneous_wrong_passwords_get_at_most_five_checks(
    two_apps: tuple[TestClient, TestClient],
) -> None:
    """Ten guesses at once, on two servers: five take the turns (four 401s and the one that
    locks), the other five are refused unchecked."""
    first, second = two_apps
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        answers = list(
            pool.map(
                lambda index: log_in((first, second)[index % 2], password="guess-1234").status_code,
                range(10),
            )
        )
    assert sorted(answers) == [401] * 4 + [423] * 6


def test_failed_logins_from_one_address_are_limited(sqlite_url: str) -> None:
    settings = settings_for(sqlite_url, BANKBOT_LIMITS__LOGINS="3")
    with TestClient(create_app(settings)) as client:
        for _ in range(3):  # successful logins give their turn back
            assert log_in(client).status_code == 200
        for index in range(3):
            assert log_in(client, f"guess{index}@example.com", "guess-1234").status_code == 401
        refused = log_in(client)
        assert refused.status_code == 429
        body = refused.json()
        assert body["error_code"] == "RATE_LIMIT_EXCEEDED"
        assert body["message"].startswith(
            "Too many login attempts from your address: the limit is 3 per 15 minutes."
        )
        assert 1 <= body["retry_after"] <= 900 and body["reset_time"].endswith("Z")
        assert refused.headers["Retry-After"] == str(body["retry_after"])
        # Another address is not limited.
        with TestClient(client.app, client=("198.51.100.7", 40000)) as elsewhere:
            assert log_in(elsewhere).status_code == 200


def test_registrations_from_one_address_are_limited(sqlite_url: str) -> None:
    settings = settings_for(sqlite_url, BANKBOT_LIMITS__REGISTRATIONS="2")
    with TestClient(create_app(settings)) as client:

        def register(index: int) -> httpx.Response:
            body = {"email": f"new{index}@example.com", "name": "New", "password": "s3cret-pass"}
            return client.post("/api/auth/register", json=body)

        assert [register(index).status_code for index in range(2)] == [201, 201]
        refused = register(2)
        assert refused.status_code == 429
        assert refused.json()["message"].startswith(
            "Too many registration attempts from your address: the limit is 2 per hour."
        )
        assert log_in(client, "new2@example.com", "s3cret-pass").status_code == 401


def test_without_the_counters_nobody_logs_in(sqlite_url: str) -> None:
    """Redis down: 503, not unlimited guessing."""
    down = {"REDIS_URL": "redis://127.0.0.1:9/0", "BANKBOT_SESSIONS__TIMEOUT_S": "0.2"}
    with TestClient(create_app(settings_for(sqlite_url, **down))) as client:
        answer = log_in(client)
        assert answer.status_code == 503
        assert answer.json()["error_code"] == "SERVICE_UNAVAILABLE"
        assert answer.headers["Retry-After"] == "5"
