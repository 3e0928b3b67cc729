"""seeds/003's support conversations and tickets, on the real app and database.

Requests carry user 1's (the customer's) access token; ticket status changes are made by
user 2, an agent. tests/api/test_authorization.py checks who else may do what.
"""

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from server import create_app
from tests.conftest import bearer, logged_in, settings_for

AGENT = 2


@pytest.fixture
def client(client: TestClient) -> TestClient:
    return logged_in(client, 1)


def as_agent(client: TestClient) -> dict[str, str]:
    """Headers of user 2, made an agent."""
    client.app.state.services.bank.users.grant("jane@example.com", "agent")
    return bearer(client, AGENT)


@pytest.fixture(params=["", "/api/v1"])
def prefix(request: pytest.FixtureRequest) -> str:
    return request.param


def start(client: TestClient, prefix: str = "") -> str:
    response = client.post(f"{prefix}/chat/start", json={"user_id": 1, "metadata": {"a": 1}})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "started"
    [greeting] = body["messages"]
    assert (greeting["role"], greeting["content"]) == (
        "assistant",
        "Hello! I can check your balance, send money to your contacts, or read your transactions.",
    )
    assert greeting["timestamp"].endswith("Z")
    return body["conversation_id"]


def say(client: TestClient, conversation: str, message: str, prefix: str = "", **extra) -> dict:
    body = {"conversation_id": conversation, "message": message, **extra}
    response = client.post(f"{prefix}/chat/message", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_conversation_answers_moves_money_once_and_keeps_its_history(
    database_url: str, prefix: str
) -> None:
    with TestClient(create_app(settings_for(database_url))) as client:
        logged_in(client, 1)
        conversation = start(client, prefix)
        balance = say(client, conversation, "what's my balance", prefix)
        assert balance["message"] == "Your current account balance is 10,000 rupees."
        assert balance["conversation_id"] == conversation
        assert balance["metadata"]["page"] == "home"
        asked = say(client, conversation, "send 500 to ravi", prefix)
        assert asked["metadata"]["data"]["require_password"] is True
        done = say(client, conversation, "ok", prefix, password="password123")
        assert done["message"].startswith("Successfully transferred 500 rupees to Ravi.")
        again = say(client, conversation, "ok", prefix, password="password123")
        assert again["metadata"]["data"].get("success") is None
        assert client.app.state.services.dialogue.assistant.ledger.balance(1) == 950_000

        history = client.get(f"{prefix}/chat/{conversation}/messages").json()
        assert [(m["role"], m["content"]) for m in history] == [
            ("assistant", history[0]["content"]),
            ("user", "what's my balance"),
            ("assistant", "Your current account balance is 10,000 rupees."),
            ("user", "send 500 to ravi"),
            ("assistant", "Send 500 rupees to Ravi? Please confirm with your password."),
            ("user", "ok"),
            ("assistant", done["message"]),
            ("user", "ok"),
            ("assistant", again["message"]),
        ]
        assert "password123" not in json.dumps([history, asked, done, again])


def test_a_password_typed_as_a_message_is_stored_masked(client: TestClient) -> None:
    conversation = start(client)
    say(client, conversation, "send 500 to ravi")
    warned = say(client, conversation, "password123")
    assert warned["message"].startswith("Please never say or type your password")
    history = client.get(f"/chat/{conversation}/messages").json()
    assert "password123" not in json.dumps(history)
    assert history[-2]["content"] == "••••••"
    assert client.app.state.services.dialogue.assistant.ledger.balance(1) == 1_000_000


def test_escalation_opens_one_ticket_that_agents_can_list_and_update(
    client: TestClient, prefix: str
) -> None:
    conversation = start(client, prefix)
    say(client, conversation, "my card was blocked", prefix)
    escalated = client.post(
        f"{prefix}/chat/escalate",
        json={"conversation_id": conversation, "category": "card_issue", "priority": "high"},
    ).json()
    assert escalated["message"] == "Conversation escalated to human agent"
    assert escalated["conversation_id"] == conversation
    ticket_id = escalated["ticket_id"]
    assert ticket_id.startswith("TKT-") and len(ticket_id) == 12
    again = client.post(f"{prefix}/chat/escalate", json={"conversation_id": conversation})
    assert again.json()["ticket_id"] == ticket_id

    other = start(client, prefix)
    client.post(f"{prefix}/chat/escalate", json={"conversation_id": other, "priority": "low"})

    listed = client.get(f"{prefix}/tickets", params={"priority": "high"}).json()
    assert [t["ticket_id"] for t in listed] == [ticket_id]
    assert listed[0]["customer_name"] == "John Doe"
    assert listed[0]["status"] == "OPEN"
    assert len(client.get(f"{prefix}/tickets").json()) == 2
    assert len(client.get(f"{prefix}/tickets", params={"skip": 1}).json()) == 1

    details = client.get(f"{prefix}/tickets/{ticket_id}").json()
    assert details["conversation_id"] == conversation
    assert details["customer_email"] == "john@example.com"
    assert details["subject"] == "my card was blocked"
    assert (details["category"], details["priority"]) == ("card_issue", "HIGH")

    updated = client.patch(
        f"{prefix}/tickets/{ticket_id}/status",
        json={"status": "resolved"},
        headers=as_agent(client),
    )
    assert updated.json() == {
        "id": details["id"],
        "ticket_id": ticket_id,
        "status": "RESOLVED",
        "assigned_to": None,
    }
    assert client.get(f"{prefix}/tickets", params={"status": "open"}).json()[0]["priority"] == "LOW"
    # Resolved, so a new escalation opens a new ticket.
    reopened = client.post(f"{prefix}/chat/escalate", json={"conversation_id": conversation})
    assert reopened.json()["ticket_id"] != ticket_id


def test_escalations_sent_at_once_open_one_ticket(database_url: str) -> None:
    """A double-clicked "talk to a person" button must not open two tickets."""
    with TestClient(create_app(settings_for(database_url))) as client:
        logged_in(client, 1)
        conversation = start(client)

        def escalate(_: int) -> str:
            body = {"conversation_id": conversation}
            return client.post("/chat/escalate", json=body).json()["ticket_id"]

        with ThreadPoolExecutor(8) as pool:
            ticket_ids = set(pool.map(escalate, range(8)))
        assert len(ticket_ids) == 1
        assert [t["ticket_id"] for t in client.get("/tickets").json()] == list(ticket_ids)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "detail"),
    [
        ("post", "/chat/message", {"conversation_id": "nope", "message": "hi"}, 404,
         "Conversation not found"),
        ("post", "/chat/escalate", {"conversation_id": "nope"}, 404, "Conversation not found"),
        ("get", "/chat/nope/messages", None, 404, "Conversation not found"),
        ("get", "/tickets/TKT-00000000", None, 404, "Ticket not found"),
        ("patch", "/tickets/TKT-00000000/status", {"status": "closed"}, 404, "Ticket not found"),
    ],
)  # fmt: skip
def test_unknown_things_are_404(
    client: TestClient,
    prefix: str,
    method: str,
    path: str,
    body: dict | None,
    status: int,
    detail: str,
) -> None:
    response = client.request(method, prefix + path, json=body, headers=as_agent(client))
    assert (response.status_code, response.json()) == (status, {"detail": detail})


def test_starting_a_chat_for_an_unknown_user_is_404_in_demo_mode(demo_client: TestClient) -> None:
    response = demo_client.post("/chat/start", json={"user_id": 999})
    assert (response.status_code, response.json()) == (404, {"detail": "User not found"})


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/chat/start", {"user_id": "1"}),
        ("post", "/chat/start", {"metadata": "not an object"}),
        ("post", "/chat/start", {"user_id": 2**63}),
        ("post", "/chat/message", {"conversation_id": "x", "message": ""}),
        ("post", "/chat/message", {"conversation_id": "x", "message": "x" * 1001}),
        ("post", "/chat/message", {"conversation_id": "x", "message": "hi", "password": "x" * 129}),
        ("post", "/chat/escalate", {"conversation_id": "x", "priority": "whenever"}),
        ("get", "/tickets?status=lost", None),
        ("get", "/tickets?limit=101", None),
        ("get", "/tickets?skip=-1", None),
        ("patch", "/tickets/TKT-00000000/status", {"status": "done"}),
    ],
)
def test_bad_input_is_422(
    client: TestClient, prefix: str, method: str, path: str, body: dict | None
) -> None:
    assert (
        client.request(method, prefix + path, json=body, headers=as_agent(client)).status_code
        == 422
    )
