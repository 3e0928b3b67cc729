"""Bad input of every kind gets a clear reply or a 422 naming the field, and moves no money.

Requests carry user 1's access token; an unknown user, reachable only in demo mode (a
token names a user that exists), is tested there.
"""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from banking.models import Account, LedgerEntry
from tests.conftest import logged_in


@pytest.fixture
def client(client: TestClient) -> TestClient:
    return logged_in(client, 1)


def ledger_state(client: TestClient) -> tuple[list[tuple[int, int]], int]:
    engine = client.app.state.services.dialogue.assistant.ledger.engine
    with Session(engine) as session:
        balances = [
            (a.user_id, a.balance) for a in session.exec(select(Account).order_by(Account.id))
        ]
        entries = session.exec(select(func.count()).select_from(LedgerEntry)).one()
    return balances, entries


@pytest.fixture
def unchanged(client: TestClient) -> Iterator[TestClient]:
    """The test's requests must leave every balance and ledger entry as it was."""
    before = ledger_state(client)
    yield client
    assert ledger_state(client) == before


def post(client: TestClient, body: object) -> dict:
    return client.post("/assistant", json=body)


def error_fields(response) -> set[str]:
    assert response.status_code == 422
    return {str(error["loc"][-1]) for error in response.json()["detail"]}


def test_malformed_json(unchanged: TestClient) -> None:
    response = unchanged.post(
        "/assistant",
        content=b'{"user_id": 1, "message": "Send 500 to Ravi", "password": "password123"',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"message": "Check my balance"}, "user_id"),
        ({"user_id": "1", "message": "Check my balance"}, "user_id"),
        ({"user_id": 1.5, "message": "Check my balance"}, "user_id"),
        ({"user_id": True, "message": "Check my balance"}, "user_id"),
        ({"user_id": 0, "message": "Check my balance"}, "user_id"),
        ({"user_id": 2**63, "message": "Check my balance"}, "user_id"),
        ({"user_id": 1}, "message"),
        ({"user_id": 1, "message": 500}, "message"),
        ({"user_id": 1, "message": ""}, "message"),
        ({"user_id": 1, "message": "   "}, "message"),
        ({"user_id": 1, "message": "send 500 to ravi " * 600}, "message"),
        ({"user_id": 1, "message": "Send 500 to Ravi", "password": 123}, "password"),
        ({"user_id": 1, "message": "Send 500 to Ravi", "password": "x" * 500}, "password"),
        ({"user_id": 1, "message": "Send 500 to Ravi", "session_id": "a b"}, "session_id"),
        ({"user_id": 1, "message": "Send 500 to Ravi", "session_id": ""}, "session_id"),
        ({"user_id": 1, "message": "Send 500 to Ravi", "session_id": "s" * 65}, "session_id"),
        ({"user_id": 1, "message": "Send 500 to Ravi", "session_id": 7}, "session_id"),
    ],
)
def test_wrong_or_missing_fields_name_the_field(unchanged: TestClient, body, field) -> None:
    assert field in error_fields(post(unchanged, body))


def test_body_that_is_not_an_object(unchanged: TestClient) -> None:
    assert post(unchanged, ["user_id", 1]).status_code == 422


@pytest.mark.parametrize(
    ("message", "reply"),
    [
        ("Send -500 to Ravi", "The amount must be more than zero."),
        ("Send 0 to Ravi", "The amount must be more than zero."),
        ("Send minus five hundred to Ravi", "The amount must be more than zero."),
        ("Send 10.555 to Ravi", "Amounts can have at most two decimal places, like ₹10.50."),
        ("Send 99999999999999999999999 to Ravi", "The most I can send in one transfer is ₹100000."),
        ("Send 100000.01 to Ravi", "The most I can send in one transfer is ₹100000."),
        ("Send NaN to Ravi", "How much should I send to Ravi?"),
        ("Send 1e309 to Ravi", "How much should I send to Ravi?"),
        ("Send money to Ravi", "How much should I send to Ravi?"),
        (
            "Send 500 to Bob",
            "I can't find 'Bob' in the system. Available contacts: Ravi, Jane, John, Mom, Mike.",
        ),
        (
            "Send 500",
            "Who should I send ₹500 to? Available contacts: Ravi, Jane, John, Mom, Mike.",
        ),
    ],
)
def test_bad_transfers_get_a_clear_reply(unchanged: TestClient, message: str, reply: str) -> None:
    for password in (None, "password123"):
        response = post(unchanged, {"user_id": 1, "message": message, "password": password})
        assert response.status_code == 200
        assert response.json()["reply"] == reply
        assert response.json()["data"] == {"require_password": False, "success": False}


def test_unknown_user_is_404_in_demo_mode(demo_client: TestClient) -> None:
    before = ledger_state(demo_client)
    response = post(demo_client, {"user_id": 4242, "message": "Send 5 to Ravi", "password": "x"})
    assert response.status_code == 404
    assert response.json()["reply"] == "User not found. Please log in again."
    assert ledger_state(demo_client) == before


def test_password_on_a_non_transfer_message_is_ignored(unchanged: TestClient) -> None:
    response = post(
        unchanged, {"user_id": 1, "message": "Check my balance", "password": "password123"}
    )
    assert response.json()["reply"] == "Your current account balance is ₹10000"
    assert "password123" not in response.text


def test_wrong_password_is_never_echoed(unchanged: TestClient) -> None:
    response = post(unchanged, {"user_id": 1, "message": "Send 5 to Ravi", "password": "hunter2"})
    assert response.json()["reply"] == "Incorrect password. Transaction cancelled."
    assert "hunter2" not in response.text


@pytest.mark.parametrize("message", ["", "x" * 1001])
def test_nlu_routes_refuse_empty_and_huge_messages(client: TestClient, message: str) -> None:
    assert "message" in error_fields(client.post("/test-nlu", json={"message": message}))
    response = client.get("/test-nlu-get", params={"message": message})
    assert "message" in error_fields(response)
