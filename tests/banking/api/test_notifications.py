"""Notifications (seeds/000): written with their event for transfers in and out, refusals,
wrong passwords and lockouts; listed, read, read all and dismissed by their owner only.

Demo data: user 1 (John Doe, ₹10000) has contacts ravi (user 3) and jane (user 2).
"""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from banking.models import Event
from server import create_app
from tests.conftest import bearer, settings_for

PASSWORD = "password123"
LIST = "/api/notifications/"


@pytest.fixture
def client(sqlite_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(sqlite_url))) as client:
        yield client


def pay(client: TestClient, amount: float, contact: str, password: str = PASSWORD) -> int:
    body = {"amount": amount, "contact": contact, "mfa_token": password}
    response = client.post("/api/v1/accounts/1/transactions", json=body, headers=bearer(client, 1))
    return response.status_code


def inbox(client: TestClient, user: int, **params: object) -> dict:
    response = client.get(LIST, params=params, headers=bearer(client, user))
    assert response.status_code == 200, response.text
    return response.json()


def said(client: TestClient, user: int) -> list[tuple[str, str]]:
    """The user's notifications as (title, message), newest first."""
    return [(n["title"], n["message"]) for n in inbox(client, user)["notifications"]]


def test_sender_and_receiver_are_told_of_a_transfer(client: TestClient) -> None:
    assert pay(client, 250.5, "ravi") == 201
    assert said(client, 1) == [
        ("Money sent", "You sent ₹250.50 to Ravi. Your balance is now ₹9749.50.")
    ]
    assert said(client, 3) == [
        ("Money received", "You received ₹250.50 from John. Your balance is now ₹5250.50.")
    ]
    mine = inbox(client, 1)
    assert mine["unread_count"] == 1
    (notification,) = mine["notifications"]
    assert notification["type"] == "transaction"
    assert notification["event"] == "transaction.completed"
    assert notification["read"] is False
    assert set(notification) == {"id", "title", "message", "type", "event", "read", "created_at"}
    assert said(client, 2) == []  # nobody else


def test_a_transfer_by_the_assistant_notifies_too(client: TestClient) -> None:
    turn = {"user_id": 1, "message": "send 500 to jane", "password": PASSWORD}
    assert client.post("/assistant", json=turn, headers=bearer(client, 1)).status_code == 200
    assert said(client, 1) == [("Money sent", "You sent ₹500 to Jane. Your balance is now ₹9500.")]
    assert said(client, 2)[0][0] == "Money received"


def test_refusals_wrong_passwords_and_the_lockout(client: TestClient) -> None:
    assert pay(client, 20_000, "ravi") == 422
    assert said(client, 1) == [
        (
            "Transfer not made",
            "Your transfer of ₹20000 to Ravi was not made: your balance was too low.",
        )
    ]
    for _ in range(4):
        assert pay(client, 10, "ravi", password="guess") == 403
    assert pay(client, 10, "ravi", password="guess") == 423
    wrong = (
        "Wrong password",
        "A wrong password was given for a transfer through the banking API. "
        "If this was not you, change your password.",
    )
    locked = (
        "Transfers locked",
        "Too many wrong passwords: your transfers are locked for 15 minutes, on every channel. "
        "If this was not you, change your password.",
    )
    # A refusal for the password is told once, by the password notifications; an attempt
    # while locked adds nothing.
    assert pay(client, 10, "ravi") == 423
    titles = said(client, 1)
    assert titles[:6] == [locked, wrong, wrong, wrong, wrong, wrong]
    assert len(titles) == 7
    assert inbox(client, 1)["unread_count"] == 7
    assert said(client, 3) == []


def test_read_one_read_all_and_dismiss(client: TestClient) -> None:
    for amount in (1, 2, 3):
        assert pay(client, amount, "ravi") == 201
    headers = bearer(client, 1)
    newest, middle, oldest = (n["id"] for n in inbox(client, 1)["notifications"])
    assert said(client, 1)[0][1].startswith("You sent ₹3 ")  # newest first
    assert [n["id"] for n in inbox(client, 1, limit=2)["notifications"]] == [newest, middle]

    response = client.patch(f"{LIST}{middle}/read", headers=headers)
    assert (response.status_code, response.json()) == (200, {"success": True})
    listed = inbox(client, 1)
    assert [n["read"] for n in listed["notifications"]] == [False, True, False]
    assert listed["unread_count"] == 2
    assert client.patch(f"{LIST}{middle}/read", headers=headers).status_code == 200  # again

    assert client.patch(f"{LIST}read-all", headers=headers).json() == {"success": True}
    assert inbox(client, 1)["unread_count"] == 0
    assert all(n["read"] for n in inbox(client, 1)["notifications"])

    response = client.delete(f"{LIST}{oldest}", headers=headers)
    assert (response.status_code, response.json()) == (200, {"success": True})
    assert [n["id"] for n in inbox(client, 1)["notifications"]] == [newest, middle]
    gone = client.delete(f"{LIST}{oldest}", headers=headers)
    assert gone.status_code == 404
    assert gone.json() == {
        "status": "error",
        "error_code": "NOT_FOUND",
        "message": "No such notification.",
    }
    # The receiver's notifications were not touched by the sender's read-all.
    assert inbox(client, 3)["unread_count"] == 3


def test_another_users_notifications_are_out_of_reach(client: TestClient) -> None:
    assert pay(client, 5, "ravi") == 201
    (ravis,) = inbox(client, 3)["notifications"]
    mary = bearer(client, 4)
    assert client.get(LIST, headers=mary).json() == {"notifications": [], "unread_count": 0}
    assert client.patch(f"{LIST}{ravis['id']}/read", headers=mary).status_code == 404
    assert client.delete(f"{LIST}{ravis['id']}", headers=mary).status_code == 404
    assert client.patch(f"{LIST}read-all", headers=mary).status_code == 200
    # Asking for another user's list by user_id is refused.
    refused = client.get(LIST, params={"user_id": 3}, headers=mary)
    assert refused.status_code == 403
    assert refused.json()["error_code"] == "FORBIDDEN"
    assert inbox(client, 3, user_id=3)["notifications"] == [ravis]  # unchanged, still unread
    # Without a token, or with a bad one: 401, in demo mode too.
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        assert client.get(LIST, headers=headers).status_code == 401
        assert client.patch(f"{LIST}{ravis['id']}/read", headers=headers).status_code == 401
        assert client.delete(f"{LIST}{ravis['id']}", headers=headers).status_code == 401
        assert client.patch(f"{LIST}read-all", headers=headers).status_code == 401
    assert inbox(client, 3)["unread_count"] == 1


def test_demo_mode_still_needs_a_token(sqlite_url: str) -> None:
    with TestClient(create_app(settings_for(sqlite_url, BANKBOT_DEMO_MODE="1"))) as client:
        response = client.get(LIST, params={"user_id": 1})
        assert response.status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", f"{LIST}?limit=0"),
        ("get", f"{LIST}?limit=101"),
        ("get", f"{LIST}?limit=ten"),
        ("patch", f"{LIST}0/read"),
        ("patch", f"{LIST}{2**63}/read"),
        ("delete", f"{LIST}abc"),
        ("delete", f"{LIST}-1"),
    ],
)
def test_bad_parameters_are_refused(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path, headers=bearer(client, 1))
    assert response.status_code == 422


def test_a_rolled_back_transfer_leaves_no_notification(client: TestClient) -> None:
    """The notifications are written in the transfer's transaction: when a later listener
    fails, the money, the events and the notifications all roll back."""
    ledger = client.app.state.services.dialogue.assistant.ledger

    def fails_on_receipt(_session: object, event: Event) -> None:
        if event.type == "transaction.received":
            raise RuntimeError("listener failed")

    ledger.events.subscribe(fails_on_receipt)
    failing = TestClient(client.app, raise_server_exceptions=False)  # the app is running
    assert pay(failing, 100, "ravi") == 500
    assert (ledger.balance(1), ledger.balance(3)) == (1_000_000, 500_000)
    assert said(client, 1) == [] and said(client, 3) == []


def test_every_event_type_has_a_text(client: TestClient) -> None:
    events = client.app.state.services.dialogue.assistant.ledger.events
    events.emit(
        1,
        "fraud.detected",
        {"amount": 84_700, "counterparty": "Ravi", "details": "Amount 3.2x above average."},
    )
    events.emit(1, "account.updated", {})  # type: ignore[arg-type]  # a type without a text
    assert said(client, 1) == [
        ("Account activity", "New activity on your account: account.updated."),
        (
            "Unusual transfer detected",
            "Your transfer of ₹847 to Ravi looked unusual. Amount 3.2x above average.",
        ),
    ]
    assert [n["type"] for n in inbox(client, 1)["notifications"]] == ["alert", "alert"]
