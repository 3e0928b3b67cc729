"""The seeds/000 chat channels: POST /api/ai/chat and WS /api/ai/chat/ws, on the real app."""

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from websockets.sync.client import connect

from tests.conftest import RULES_ONLY, free_port
from tests.test_server import running_server, wait_for

START_PAISE = 1_000_000


def balance(client: TestClient, user_id: int = 1) -> int:
    return client.app.state.assistant.ledger.balance(user_id)


def chat(client: TestClient, message: str, **fields: object) -> tuple[int, dict]:
    response = client.post("/api/ai/chat", json={"user_id": 1, "message": message, **fields})
    return response.status_code, response.json()


def test_http_chat_answers_and_continues_a_transfer(client: TestClient) -> None:
    status, first = chat(client, "what's my balance")
    assert status == 200
    assert first["response"] == "Your current account balance is 10000 rupees."
    status, asked = chat(client, "send 500 to ravi")
    assert asked["data"]["require_password"] is True
    session = asked["session_id"]
    assert session != first["session_id"]
    _, done = chat(client, "confirm", session_id=session, password="password123")
    assert done["response"].startswith("Successfully transferred 500 rupees to Ravi.")
    assert "password123" not in json.dumps(done)
    _, again = chat(client, "confirm", session_id=session, password="password123")
    assert again["data"].get("success") is not True
    assert balance(client) == START_PAISE - 50_000


@pytest.mark.parametrize(
    "body",
    [
        {"message": "hi"},
        {"user_id": "1", "message": "hi"},
        {"user_id": 1, "message": ""},
        {"user_id": 1, "message": "x" * 1001},
        {"user_id": 1, "message": "hi", "session_id": "not valid!"},
        {"user_id": 1, "message": "hi", "password": "x" * 129},
    ],
)
def test_http_chat_refuses_bad_fields(client: TestClient, body: dict) -> None:
    assert client.post("/api/ai/chat", json=body).status_code == 422


def test_http_chat_for_an_unknown_user_is_404(client: TestClient) -> None:
    response = client.post("/api/ai/chat", json={"user_id": 999, "message": "hi"})
    assert response.status_code == 404
    assert response.json()["response"] == "User not found. Please log in again."


def receive_reply(socket) -> tuple[str, dict]:
    """chat_start, chunks, chat_end: the joined text and the chat_end event."""
    assert socket.receive_json() == {"type": "chat_start"}
    parts = []
    while (event := socket.receive_json())["type"] == "chat_chunk":
        parts.append(event["content"])
    assert event["type"] == "chat_end"
    assert len(parts) > 1  # streamed, not one block
    return "".join(parts), event


def test_socket_streams_replies_and_answers_pings(client: TestClient) -> None:
    with client.websocket_connect("/api/ai/chat/ws?user_id=1") as socket:
        socket.send_json({"type": "ping"})
        assert socket.receive_json() == {"type": "pong"}
        socket.send_json({"type": "chat", "message": "What is my balance?"})
        text, end = receive_reply(socket)
        assert text == "Your current account balance is 10000 rupees."
        assert end["page"] == "home"
        assert end["data"]["balance"] == 10000


def test_socket_transfer_is_confirmed_by_a_password_message_once(client: TestClient) -> None:
    with client.websocket_connect("/api/ai/chat/ws?user_id=1") as socket:
        socket.send_json({"type": "chat", "message": "send money to mom"})
        assert receive_reply(socket)[0] == "How much should I send to Mom?"
        socket.send_json({"type": "chat", "message": "two hundred"})
        text, end = receive_reply(socket)
        assert text == "Send 200 rupees to Mom? Please confirm with your password."
        assert end["data"]["require_password"] is True
        socket.send_json({"type": "password", "password": "password123"})
        text, end = receive_reply(socket)
        assert (
            text == "Successfully transferred 200 rupees to Mom. Your new balance is 9800 rupees."
        )
        assert end["data"]["success"] is True
        socket.send_json({"type": "password", "password": "password123"})
        assert receive_reply(socket)[0] == "There is no transfer waiting for your password."
    assert balance(client) == START_PAISE - 20_000
    assert balance(client, 4) == 500_000 + 20_000


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ("not json", "Messages must be JSON objects."),
        ("[1, 2]", "Invalid message: Input should be a valid dictionary"),
        ('{"type": "dance"}', 'Unknown type: use "chat", "password" or "ping".'),
        ('{"type": "chat"}', 'A "chat" message needs a "message" text.'),
        ('{"type": "chat", "message": ""}', "Invalid message: String should have at least"),
        ('{"type": "chat", "message": "' + "x" * 1001 + '"}', "Invalid message: String should"),
        ('{"type": "password"}', 'A "password" message needs a "password".'),
        ('{"type": "chat", "message": "' + "x" * 70_000 + '"}', "Messages are limited to"),
        (b"\x00\x01binary", "Send JSON text messages, not binary frames."),
    ],
)
def test_socket_bad_messages_get_an_error_and_the_socket_lives_on(
    client: TestClient, frame: str | bytes, error: str
) -> None:
    with client.websocket_connect("/api/ai/chat/ws?user_id=1") as socket:
        if isinstance(frame, bytes):
            socket.send_bytes(frame)
        else:
            socket.send_text(frame)
        event = socket.receive_json()
        assert event["type"] == "error"
        assert event["message"].startswith(error)
        socket.send_json({"type": "ping"})
        assert socket.receive_json() == {"type": "pong"}
    assert balance(client) == START_PAISE


@pytest.mark.parametrize("query", ["", "?user_id=abc", "?user_id=999", "?user_id=-1"])
def test_socket_for_no_known_user_is_closed(client: TestClient, query: str) -> None:
    with client.websocket_connect(f"/api/ai/chat/ws{query}") as socket:
        assert socket.receive_json()["type"] == "error"
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
    assert closed.value.code == 1008


def test_socket_over_a_real_connection_survives_a_dropped_client(tmp_path: Path) -> None:
    port = free_port()
    env = {**RULES_ONLY, "DATABASE_URL": f"sqlite:///{tmp_path / 'bank.db'}"}
    with running_server(["--port", str(port)], env) as process:
        wait_for(f"http://127.0.0.1:{port}/health", process)
        url = f"ws://127.0.0.1:{port}/api/ai/chat/ws?user_id=1"
        with connect(url) as socket:
            socket.send(json.dumps({"type": "chat", "message": "send 500 to ravi"}))
        # Dropped before reading the reply; the server goes on serving.
        with connect(url) as socket:
            socket.send(json.dumps({"type": "ping"}))
            assert json.loads(socket.recv(timeout=10)) == {"type": "pong"}
            socket.send(json.dumps({"type": "chat", "message": "what's my balance"}))
            events = [json.loads(socket.recv(timeout=10))]
            while events[-1]["type"] != "chat_end":
                events.append(json.loads(socket.recv(timeout=10)))
        text = "".join(event.get("content", "") for event in events)
        assert text == "Your current account balance is 10000 rupees."
        assert process.poll() is None
