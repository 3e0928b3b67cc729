"""The seeds/000 chat channels, POST /api/ai/chat and WS /api/ai/chat/ws, on the real app.

Requests carry user 1's access token (the socket's too, in its handshake); what a missing
or unknown user_id does is tested in demo mode, where the user_id names the user.
"""

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from dialogue.api.chat import chunks
from tests.conftest import RULES_ONLY, VOICE_OFF, free_port, logged_in
from tests.test_server import log_in, running_server, wait_for

PASSWORD = "password123"
FRAME_CAP_BYTES = 1024 * 1024  # config.yaml's security.max_ws_frame_bytes
START_PAISE = 1_000_000  # user 1
RAVI = 3  # user 1's contact "ravi" (data/demo_users.yaml), with 500_000 paise
SOCKET = "/api/ai/chat/ws?user_id=1"
MAX_FRAME_BYTES = 64 * 1024  # config.yaml's security.max_ws_message_bytes


@pytest.fixture
def client(client: TestClient) -> TestClient:
    assert client.app.state.services.settings.security.max_ws_message_bytes == MAX_FRAME_BYTES
    return logged_in(client, 1)


def balance(client: TestClient, user_id: int = 1) -> int:
    return client.app.state.services.dialogue.assistant.ledger.balance(user_id)


def post_chat(client: TestClient, message: str, **fields: Any) -> httpx.Response:
    return client.post("/api/ai/chat", json={"user_id": 1, "message": message, **fields})


def test_http_chat_answers_a_balance_question(client: TestClient) -> None:
    response = post_chat(client, "what's my balance")
    assert response.status_code == 200
    body = response.json()
    assert "10,000 rupees" in body["response"]
    assert body["page"] == "home"
    assert body["data"]["balance"] == 10000
    assert re.fullmatch(r"[0-9a-f]{32}", body["session_id"])


def test_http_chat_echoes_the_session_it_was_given(client: TestClient) -> None:
    assert post_chat(client, "hello", session_id="my-chat_1").json()["session_id"] == "my-chat_1"


def test_http_chat_transfer_over_two_turns_moves_money_once(client: TestClient) -> None:
    asked = post_chat(client, "send 500 to ravi").json()
    assert asked["data"]["require_password"] is True
    session = asked["session_id"]
    done = post_chat(client, "confirm", session_id=session, password=PASSWORD)
    assert done.status_code == 200
    assert done.json()["response"].startswith("Successfully transferred 500 rupees to Ravi.")
    assert PASSWORD not in done.text
    again = post_chat(client, "confirm", session_id=session, password=PASSWORD).json()
    assert again["data"].get("success") is not True
    assert balance(client) == START_PAISE - 50_000
    assert balance(client, RAVI) == 500_000 + 50_000


def test_http_chat_takes_an_empty_password_as_none(client: TestClient) -> None:
    response = post_chat(client, "what's my balance", password="")
    assert response.status_code == 200


def test_http_chat_takes_the_user_from_the_token(client: TestClient) -> None:
    response = client.post("/api/ai/chat", json={"message": "what's my balance"})
    assert response.status_code == 200
    assert response.json()["data"]["balance"] == 10000


@pytest.mark.parametrize(
    "body",
    [
        {"user_id": 1},
        {"user_id": "1", "message": "hi"},
        {"user_id": 0, "message": "hi"},
        {"user_id": 2**63, "message": "hi"},
        {"user_id": 1, "message": "   "},
        {"user_id": 1, "message": "x" * 1001},
        {"user_id": 1, "message": "hi", "session_id": "not valid!"},
        {"user_id": 1, "message": "hi", "session_id": "x" * 65},
        {"user_id": 1, "message": "hi", "password": "x" * 129},
    ],
)
def test_http_chat_refuses_bad_fields(client: TestClient, body: dict) -> None:
    assert client.post("/api/ai/chat", json=body).status_code == 422


def test_http_chat_in_demo_mode_needs_a_known_user_id(demo_client: TestClient) -> None:
    response = demo_client.post("/api/ai/chat", json={"user_id": 999, "message": "hi"})
    assert response.status_code == 404
    assert response.json()["response"] == "User not found. Please log in again."
    nobody = demo_client.post("/api/ai/chat", json={"message": "hi"})
    assert nobody.status_code == 422
    assert nobody.json()["message"] == "Send user_id or a token."


@pytest.mark.parametrize(
    "text", ["", "one", "Send 500 rupees to Ravi? Please confirm.", " lead  two\nlines "]
)
def test_chunks_are_words_that_join_back_into_the_text(text: str) -> None:
    parts = chunks(text)
    assert "".join(parts) == text
    assert all(len(part.split()) <= 1 for part in parts)


def receive_reply(socket: WebSocketTestSession) -> tuple[str, dict]:
    """chat_start, chunks, chat_end: the joined chunks and the chat_end event."""
    assert socket.receive_json() == {"type": "chat_start"}
    parts = []
    while (event := socket.receive_json())["type"] == "chat_chunk":
        parts.append(event["content"])
    assert event["type"] == "chat_end"
    assert all(len(part.split()) == 1 for part in parts)  # word by word
    return "".join(parts), event


def test_socket_answers_pings(client: TestClient) -> None:
    with client.websocket_connect(SOCKET) as socket:
        for _ in range(2):
            socket.send_json({"type": "ping"})
            assert socket.receive_json() == {"type": "pong"}


def test_socket_streams_the_reply_word_by_word(client: TestClient) -> None:
    with client.websocket_connect(SOCKET) as socket:
        socket.send_json({"type": "chat", "message": "What is my balance?"})
        text, end = receive_reply(socket)
    assert text == "Your current account balance is 10,000 rupees."
    assert end["page"] == "home"
    assert end["data"]["balance"] == 10000


def test_socket_transfer_confirmed_by_a_password_message_moves_money_once(
    client: TestClient,
) -> None:
    with client.websocket_connect(SOCKET) as socket:
        socket.send_json({"type": "chat", "message": "send 500 to ravi"})
        text, end = receive_reply(socket)
        assert text == "Send 500 rupees to Ravi? Please confirm with your password."
        assert end["data"]["awaiting"] == "password"
        assert end["data"]["require_password"] is True
        socket.send_json({"type": "password", "password": PASSWORD})
        text, end = receive_reply(socket)
        assert text.startswith("Successfully transferred 500 rupees to Ravi.")
        assert end["data"]["success"] is True
        assert PASSWORD not in json.dumps(end)
        socket.send_json({"type": "password", "password": PASSWORD})
        text, end = receive_reply(socket)
        assert end["data"].get("success") is not True
    assert balance(client) == START_PAISE - 50_000
    assert balance(client, RAVI) == 500_000 + 50_000


def test_each_socket_is_a_conversation_of_its_own(client: TestClient) -> None:
    with client.websocket_connect(SOCKET) as socket:
        socket.send_json({"type": "chat", "message": "send 500 to ravi"})
        receive_reply(socket)
    with client.websocket_connect(SOCKET) as socket:
        socket.send_json({"type": "password", "password": PASSWORD})
        assert receive_reply(socket)[0] == "There is no transfer waiting for your password."
    assert balance(client) == START_PAISE


TOO_LONG_PASSWORD = "secret-" + "s" * 128


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ("not json", "Messages must be JSON objects. Invalid JSON"),
        ("[" * 10_000, "Messages must be JSON objects. Invalid JSON"),
        ("[1, 2]", "Messages must be JSON objects."),
        ("null", "Messages must be JSON objects."),
        ("{}", 'Unknown or missing "type"'),
        ('{"type": "dance"}', 'Unknown or missing "type"'),
        ('{"type": "chat"}', 'Bad "message" in a "chat" message: Field required.'),
        ('{"type": "chat", "message": 5}', 'Bad "message" in a "chat" message: Input should'),
        ('{"type": "chat", "message": " "}', 'Bad "message" in a "chat" message: String should'),
        (json.dumps({"type": "chat", "message": "x" * 1001}), 'Bad "message" in a "chat"'),
        (
            json.dumps({"type": "chat", "message": "hi", "password": TOO_LONG_PASSWORD}),
            'Bad "password" in a "chat" message: String should have at most 128 characters.',
        ),
        ('{"type": "password"}', 'Bad "password" in a "password" message: Field required.'),
        ('{"type": "password", "password": ""}', 'Bad "password" in a "password" message'),
        (json.dumps({"type": "password", "password": TOO_LONG_PASSWORD}), 'Bad "password"'),
        (json.dumps({"type": "chat", "message": "x" * MAX_FRAME_BYTES}), "Messages are limited"),
        (b'{"type": "ping"}', "Send JSON text messages, not binary frames."),
    ],
)
def test_socket_bad_messages_get_an_error_and_the_socket_lives_on(
    client: TestClient, frame: str | bytes, error: str
) -> None:
    with client.websocket_connect(SOCKET) as socket:
        if isinstance(frame, bytes):
            socket.send_bytes(frame)
        else:
            socket.send_text(frame)
        event = socket.receive_json()
        assert event["type"] == "error"
        assert event["message"].startswith(error)
        assert "secret" not in event["message"]
        socket.send_json({"type": "chat", "message": "what's my balance"})
        assert "10,000 rupees" in receive_reply(socket)[0]
    assert balance(client) == START_PAISE


def test_socket_survives_a_failed_turn(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("database gone")

    with client.websocket_connect(SOCKET) as socket:
        monkeypatch.setattr(client.app.state.services.dialogue.assistant, "turn", broken)
        socket.send_json({"type": "chat", "message": "what's my balance"})
        assert socket.receive_json() == {
            "type": "error",
            "message": "Server error. Please try again.",
        }
        socket.send_json({"type": "ping"})
        assert socket.receive_json() == {"type": "pong"}


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("", "Connect with ?user_id=<your user id>."),
        ("?user_id=abc", "Connect with ?user_id=<your user id>."),
        ("?user_id=0", "Connect with ?user_id=<your user id>."),
        ("?user_id=-1", "Connect with ?user_id=<your user id>."),
        ("?user_id=1.0", "Connect with ?user_id=<your user id>."),
        ("?user_id=%C2%B2", "Connect with ?user_id=<your user id>."),  # "²" is a digit
        ("?user_id=" + "9" * 30, "Connect with ?user_id=<your user id>."),
        ("?user_id=" + "9" * 5000, "Connect with ?user_id=<your user id>."),
        ("?user_id=999", "User not found. Please log in again."),
    ],
)
def test_socket_in_demo_mode_without_a_known_user_is_closed_with_1008(
    demo_client: TestClient, query: str, error: str
) -> None:
    with demo_client.websocket_connect(f"/api/ai/chat/ws{query}") as socket:
        assert socket.receive_json() == {"type": "error", "message": error}
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
    assert closed.value.code == 1008


def reply_over(socket: ClientConnection) -> str:
    """The joined chunks of the next reply on a real socket."""
    events = [json.loads(socket.recv(timeout=10))]
    while events[-1]["type"] != "chat_end":
        events.append(json.loads(socket.recv(timeout=10)))
    assert events[0] == {"type": "chat_start"}
    return "".join(event["content"] for event in events[1:-1])


def test_real_socket_chats_survives_a_dropped_client_and_bounds_messages(tmp_path: Path) -> None:
    port = free_port()
    env = {**RULES_ONLY, **VOICE_OFF, "DATABASE_URL": f"sqlite:///{tmp_path / 'bank.db'}"}
    with running_server(["--host", "127.0.0.1", "--port", str(port)], env) as server:
        wait_for(f"http://127.0.0.1:{port}/health", server)
        token = log_in(f"http://127.0.0.1:{port}")
        url = f"ws://127.0.0.1:{port}/api/ai/chat/ws?token={token['access_token']}"
        with connect(url) as socket:
            socket.send(json.dumps({"type": "ping"}))
            assert json.loads(socket.recv(timeout=10)) == {"type": "pong"}
            socket.send(json.dumps({"type": "chat", "message": "what's my balance"}))
            assert reply_over(socket) == "Your current account balance is 10,000 rupees."
        with connect(url) as socket:
            socket.send(json.dumps({"type": "chat", "message": "send 500 to ravi"}))
            assert reply_over(socket).endswith("Please confirm with your password.")
            socket.send(json.dumps({"type": "password", "password": PASSWORD}))
            assert json.loads(socket.recv(timeout=10)) == {"type": "chat_start"}
        # Gone mid-reply; the transfer it confirmed was made once and the server serves on.
        health = wait_for(f"http://127.0.0.1:{port}/health", server)
        assert health.json()["status"] == "healthy"
        with connect(url) as socket:
            socket.send(json.dumps({"type": "chat", "message": "what's my balance"}))
            assert reply_over(socket) == "Your current account balance is 9,500 rupees."
            # Over the message limit: an error, and the socket lives on. Far over it: the
            # server closes the socket (1009) without reading the message.
            socket.send(json.dumps({"type": "chat", "message": "x" * MAX_FRAME_BYTES}))
            refusal = json.loads(socket.recv(timeout=10))
            assert refusal["message"] == f"Messages are limited to {MAX_FRAME_BYTES} bytes."
            socket.send("x" * (FRAME_CAP_BYTES + 1))
            with pytest.raises(ConnectionClosed) as closed:
                socket.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    log = server.stdout.read()
    assert "Traceback" not in log
    assert "ERROR" not in log
    assert PASSWORD not in log
    assert "/api/ai/chat/ws?token=***" in log  # uvicorn logs the path; the token is masked
    assert token["access_token"] not in log
