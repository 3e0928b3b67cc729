"""Idempotency-Key on the transfer-executing channels: a retry returns the first answer and
moves no money again; the same key for another request is refused."""

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col, func, select

from banking.idempotency import IdempotentRequest, transfer_id_for
from banking.models import LedgerEntry
from server import create_app
from tests.conftest import settings_for

PASSWORD = "password123"
SEND = {"user_id": 1, "message": "send 500 to ravi", "password": PASSWORD}
START_PAISE = 1_000_000
# Requests name their user by user_id (demo mode): these tests are about retries, not tokens.
DEMO = {"BANKBOT_DEMO_MODE": "1"}


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


def transfers(client: TestClient) -> int:
    with Session(client.app.state.services.dialogue.assistant.ledger.engine) as session:
        query = select(func.count(func.distinct(LedgerEntry.transfer_id))).where(
            col(LedgerEntry.transfer_id).is_not(None)
        )
        return session.exec(query).one()


def balance(client: TestClient) -> int:
    return client.app.state.services.dialogue.assistant.ledger.balance(1)


def test_a_retried_transfer_returns_the_first_answer_and_pays_once(sqlite_url: str) -> None:
    with TestClient(create_app(settings_for(sqlite_url, **DEMO))) as client:
        first = client.post("/assistant", json=SEND, headers=keyed("pay-ravi-1"))
        assert first.json()["reply"] == (
            "Successfully transferred ₹500 to Ravi. Your new balance is ₹9500."
        )
        assert "Idempotent-Replayed" not in first.headers
        retry = client.post("/api/v1/assistant", json=SEND, headers=keyed("pay-ravi-1"))
        assert (retry.status_code, retry.json()) == (200, first.json())
        assert retry.headers["Idempotent-Replayed"] == "true"
        assert balance(client) == START_PAISE - 50_000
        # The same key with another request: refused, nothing moves.
        other_request = {**SEND, "message": "send 600 to ravi"}
        other = client.post("/assistant", json=other_request, headers=keyed("pay-ravi-1"))
        assert other.status_code == 422
        assert other.json()["error_code"] == "IDEMPOTENCY_KEY_REUSED"
        # Keys belong to a user: user 2 may use the same one for its own transfer.
        mine = {"user_id": 2, "message": "send 100 to john", "password": PASSWORD}
        theirs = client.post("/assistant", json=mine, headers=keyed("pay-ravi-1"))
        assert theirs.json()["data"]["success"] is True
        assert transfers(client) == 2
        # A new key is a new transfer.
        assert client.post("/assistant", json=SEND, headers=keyed("pay-ravi-2")).json()["data"][
            "success"
        ]
        assert balance(client) == START_PAISE - 100_000 + 10_000  # user 2 sent 100 to user 1
        bad = client.post("/assistant", json=SEND, headers=keyed("has space"))
        assert bad.status_code == 422 and bad.json()["error_code"] == "INVALID_REQUEST"

    # The answers are kept in the database: a restarted server still replays them.
    with TestClient(create_app(settings_for(sqlite_url, **DEMO))) as restarted:
        again = restarted.post("/assistant", json=SEND, headers=keyed("pay-ravi-1"))
        assert again.json() == first.json()
        assert balance(restarted) == START_PAISE - 90_000


@pytest.fixture
def client(sqlite_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(sqlite_url, **DEMO))) as client:
        yield client


def test_the_first_step_and_the_confirmation_are_different_requests(client: TestClient) -> None:
    """A key reused from the password-less first step for the second is refused, not replayed."""
    ask = {key: value for key, value in SEND.items() if key != "password"}
    asked = client.post("/assistant", json=ask, headers=keyed("step"))
    assert asked.json()["data"]["require_password"] is True
    reused = client.post("/assistant", json=SEND, headers=keyed("step"))
    assert reused.status_code == 422
    assert balance(client) == START_PAISE


@pytest.mark.parametrize("channel", ["chat", "support-chat"])
def test_a_retried_conversation_confirmation_is_replayed(client: TestClient, channel: str) -> None:
    if channel == "chat":
        path, opening = "/api/ai/chat", {"user_id": 1, "session_id": "keyed"}
    else:
        path = "/chat/message"
        started = client.post("/chat/start", json={"user_id": 1}).json()
        opening = {"conversation_id": started["conversation_id"]}
    client.post(path, json={**opening, "message": "send 500 to ravi"})
    confirm = {**opening, "message": "yes", "password": PASSWORD}
    first = client.post(path, json=confirm, headers=keyed("confirm-1"))
    retry = client.post(path, json=confirm, headers=keyed("confirm-1"))
    assert retry.json() == first.json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert "Successfully transferred 500 rupees to Ravi." in str(first.json())
    assert balance(client) == START_PAISE - 50_000


def test_a_key_still_running_gets_409_then_is_taken_over_without_paying_twice(
    sqlite_url: str,
) -> None:
    """What a retry meets after its server died between committing the transfer and storing
    the answer: a claimed, unfinished key whose transfer is already in the ledger."""
    settings = settings_for(sqlite_url, BANKBOT_IDEMPOTENCY__LEASE_S="1", **DEMO)
    with TestClient(create_app(settings)) as client:
        assert client.post("/assistant", json=SEND, headers=keyed("k1")).json()["data"]["success"]
        with (
            Session(client.app.state.services.dialogue.assistant.ledger.engine) as session,
            session.begin(),
        ):
            session.exec(
                update(IdempotentRequest)
                .where(col(IdempotentRequest.key) == "k1")
                .values(status_code=None, response=None, lease_until=time.time() + 1)
            )
        busy = client.post("/assistant", json=SEND, headers=keyed("k1"))
        assert busy.status_code == 409
        assert busy.json()["error_code"] == "IDEMPOTENCY_KEY_IN_USE"
        assert busy.headers["Retry-After"] == "1"
        time.sleep(1.1)
        taken_over = client.post("/assistant", json=SEND, headers=keyed("k1")).json()
        assert taken_over["reply"] == "That transfer was already made. I did not send it again."
        assert balance(client) == START_PAISE - 50_000
        assert transfers(client) == 1
        replay = client.post("/assistant", json=SEND, headers=keyed("k1"))
        assert replay.json() == taken_over
        assert transfer_id_for(1, "k1") in _transfer_ids(client)


def _transfer_ids(client: TestClient) -> set[str | None]:
    with Session(client.app.state.services.dialogue.assistant.ledger.engine) as session:
        return set(session.exec(select(LedgerEntry.transfer_id)).all())
