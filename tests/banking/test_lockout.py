"""Wrong passwords lock transfers: per user, across channels and server processes."""

import concurrent.futures
import contextlib
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from banking import make_engine
from banking.models import Account, Event
from server import create_app
from tests.conftest import (
    NO_LIMITS,
    REDIS_URL,
    RULES_ONLY,
    VOICE_OFF,
    bearer,
    logged_in,
    settings_for,
)
from tests.test_faults import QUIET, servers
from tests.test_server import bearer_of

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


@contextlib.contextmanager
def two_servers(postgres_url: str, redis_prefix: str) -> Iterator[list[str]]:
    """Two real server processes sharing PostgreSQL and Redis; their base URLs."""
    env = {
        **RULES_ONLY,
        **VOICE_OFF,
        **NO_LIMITS,
        **QUIET,
        "DATABASE_URL": postgres_url,
        "REDIS_URL": REDIS_URL,
        "BANKBOT_SESSIONS__KEY_PREFIX": redis_prefix,
    }
    with servers(2, env, start_s=120) as bases:  # a loaded machine is slow to start
        yield bases


def pins_at_once(bases: list[str], pins: list[str]) -> list[int]:
    """User 1 sends ₹10 to Ravi once per PIN, all at the same moment, to alternate servers;
    the status codes, sorted."""
    headers = bearer_of(bases[0])

    def send(index: int) -> int:
        body = {"amount": 10, "contact": "ravi", "mfa_method": "pin", "mfa_token": pins[index]}
        keyed = {**headers, "Idempotency-Key": f"pin-{index}"}
        url = f"{bases[index % 2]}/api/v1/accounts/1/transactions"
        return httpx.post(url, json=body, headers=keyed, timeout=60).status_code

    with concurrent.futures.ThreadPoolExecutor(len(pins)) as pool:
        return sorted(pool.map(send, range(len(pins))))


def balance_of_user_1(postgres_url: str) -> int:
    engine = make_engine(postgres_url)
    with Session(engine) as session:
        balance = session.exec(select(Account.balance).where(Account.user_id == 1)).one()
    engine.dispose()
    return balance


def test_ten_simultaneous_wrong_pins_on_two_servers_get_at_most_five_checks(
    postgres_url: str, redis_prefix: str
) -> None:
    """Each guess takes a place among the checks under way before bcrypt runs: of ten wrong
    PINs sent at once to two server processes, five are checked (four answered 403, the
    fifth locks: 423) and five are refused unchecked (423)."""
    with two_servers(postgres_url, redis_prefix) as bases:
        answers = pins_at_once(bases, ["9999"] * 10)
        right = {"amount": 10, "contact": "ravi", "mfa_method": "pin", "mfa_token": "1234"}
        after = httpx.post(
            f"{bases[1]}/api/v1/accounts/1/transactions",
            json=right,
            headers=bearer_of(bases[0]),
            timeout=60,
        )
    assert answers == [403] * 4 + [423] * 6
    assert after.status_code == 423  # locked, even with the right PIN
    engine = make_engine(postgres_url)
    with Session(engine) as session:
        failed = session.exec(
            select(Event).where(Event.user_id == 1, Event.type == "password.failed")
        ).all()
    engine.dispose()
    assert len(failed) == 5  # one per bcrypt check that found the PIN wrong
    assert balance_of_user_1(postgres_url) == 1_000_000


def test_more_simultaneous_right_pins_than_the_lockout_allows_all_go_through(
    postgres_url: str, redis_prefix: str
) -> None:
    """A user's own transfers sent at once (a batch of payouts by the API) wait for their
    checks; none is refused as "locked" though no PIN was wrong."""
    with two_servers(postgres_url, redis_prefix) as bases:
        answers = pins_at_once(bases, ["1234"] * 10)
    assert answers == [201] * 10
    assert balance_of_user_1(postgres_url) == 1_000_000 - 10 * 10_00
