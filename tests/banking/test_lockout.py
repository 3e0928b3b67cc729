"""Wrong passwords lock transfers: per user, across channels and server processes."""

import time

import pytest
from fastapi.testclient import TestClient

from server import create_app
from tests.conftest import REDIS_URL, bearer, logged_in, settings_for

TRANSFER = {"user_id": 1, "message": "send 100 to ravi"}


@pytest.fixture
def client(client: TestClient) -> TestClient:
    return logged_in(client, 1)


def attempt(client: TestClient, password: str, session_id: str | None = None) -> dict:
    body = {**TRANSFER, "password": password}
    if session_id:
        body["session_id"] = session_id
    return client.post("/assistant", json=body).json()


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_the_sixth_password_in_the_window_is_refused_even_when_right(
    sqlite_url: str, redis_prefix: str, store: str
) -> None:
    shared = {"REDIS_URL": REDIS_URL, "BANKBOT_SESSIONS__KEY_PREFIX": redis_prefix}
    with TestClient(
        create_app(settings_for(sqlite_url, **(shared if store == "redis" else {})))
    ) as client:
        logged_in(client, 1)
        for _ in range(4):
            assert attempt(client, "guess")["reply"] == "Incorrect password. Transaction cancelled."
        fifth = attempt(client, "guess", session_id="conversation")["reply"]
        assert (
            fifth
            == "Too many wrong passwords. Transfers are locked for 15 minutes. Nothing was sent."
        )
        sixth = attempt(client, "password123")
        assert sixth["reply"].startswith("Too many wrong passwords.")
        assert sixth["data"]["success"] is False
        assert client.app.state.services.dialogue.assistant.ledger.balance(1) == 1_000_000
        # Locked users are told before they are asked for a password, in a conversation too.
        asked = client.post("/assistant", json=TRANSFER).json()
        assert asked["reply"].startswith("Too many wrong passwords.")
        assert asked["data"]["require_password"] is False
        turn = {**TRANSFER, "session_id": "later"}
        assert client.post("/assistant", json=turn).json()["reply"].startswith("Too many")
        # The locked user can still read the balance, and another user is not affected.
        balance = client.post("/assistant", json={"user_id": 1, "message": "my balance"}).json()
        assert balance["reply"] == "Your current account balance is ₹10000"
        other = {**TRANSFER, "user_id": 2, "message": "send 100 to john"}
        reply = client.post(
            "/assistant", json={**other, "password": "password123"}, headers=bearer(client, 2)
        ).json()
        assert reply["data"]["success"] is True


def test_a_right_password_clears_earlier_failures(client: TestClient) -> None:
    for _ in range(4):
        attempt(client, "guess")
    assert attempt(client, "password123")["data"]["success"] is True
    for _ in range(4):
        assert attempt(client, "guess")["reply"] == "Incorrect password. Transaction cancelled."
    assert attempt(client, "password123")["data"]["success"] is True


def test_the_lock_ends_after_its_cooling_period(sqlite_url: str) -> None:
    settings = settings_for(sqlite_url, BANKBOT_LOCKOUT__ATTEMPTS="2", BANKBOT_LOCKOUT__LOCK_S="1")
    with TestClient(create_app(settings)) as client:
        logged_in(client, 1)
        attempt(client, "guess")
        assert attempt(client, "guess")["reply"].startswith("Too many wrong passwords.")
        assert attempt(client, "password123")["reply"].startswith("Too many wrong passwords.")
        time.sleep(1.2)
        assert attempt(client, "password123")["data"]["success"] is True


def test_wrong_passwords_and_the_lock_are_recorded_as_events(client: TestClient) -> None:
    """Notifications and webhooks learn of each wrong password, the lock and the refusals."""
    for _ in range(5):
        attempt(client, "guess")
    attempt(client, "password123")
    events = client.app.state.services.dialogue.assistant.ledger.events.for_user(1)
    kinds = [event.type for event in events]
    assert kinds.count("password.failed") == 5
    assert kinds.count("account.locked") == 1
    refusals = [event.payload["reason"] for event in events if event.type == "transaction.failed"]
    assert refusals == ["wrong_password"] * 4 + ["locked", "locked"]
    assert all("guess" not in str(event.payload) for event in events)
    assert "transaction.completed" not in kinds
