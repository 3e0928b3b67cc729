"""The contract's per-user limits at their real defaults: 10 requests a minute (429 with
X-RateLimit-* headers), 10 transfers an hour; counted across channels and processes."""

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from banking.audit import AuditLog
from server import create_app
from tests.conftest import REDIS_URL, fresh_window, settings_for

BALANCE = {"user_id": 1, "message": "what's my balance"}
PASSWORD = "password123"
# Requests name their user by user_id (demo mode): these tests are about limits, not tokens.
DEMO = {"BANKBOT_DEMO_MODE": "1"}


@pytest.fixture
def limited(sqlite_url: str) -> Iterator[TestClient]:
    """The app with config.yaml's limits (the other tests raise them out of reach)."""
    settings = settings_for(
        sqlite_url, BANKBOT_LIMITS__REQUESTS="10", BANKBOT_LIMITS__TRANSFERS="10", **DEMO
    )
    assert settings.limits.requests_window_s == 60
    with TestClient(create_app(settings)) as client:
        yield client


def test_the_eleventh_request_in_a_minute_gets_429_with_the_documented_body(
    limited: TestClient,
) -> None:
    fresh_window()
    reset = (int(time.time()) // 60 + 1) * 60
    for used in range(1, 11):
        # Every channel counts for the same user: /assistant, the chat and support chat.
        response = (
            limited.post("/api/ai/chat", json=BALANCE)
            if used % 3 == 0
            else limited.post("/assistant", json=BALANCE)
        )
        assert response.status_code == 200, response.text
        assert response.headers["X-RateLimit-Limit"] == "10"
        assert response.headers["X-RateLimit-Remaining"] == str(10 - used)
        assert response.headers["X-RateLimit-Reset"] == str(reset)
    refused = limited.post("/api/v1/assistant", json=BALANCE)
    assert refused.status_code == 429
    body = refused.json()
    assert body["status"] == "error"
    assert body["error_code"] == "RATE_LIMIT_EXCEEDED"
    assert body["message"].startswith("Too many requests: the limit is 10 requests per minute.")
    assert 1 <= body["retry_after"] <= 60
    assert body["reset_time"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(reset))
    assert refused.headers["Retry-After"] == str(body["retry_after"])
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    # Another user is not affected. /test-nlu touches no user's data: it counts against the
    # client's address (docs/security.md, Channels), not against a user.
    other = limited.post("/assistant", json={**BALANCE, "user_id": 2})
    assert other.status_code == 200
    assert other.headers["X-RateLimit-Remaining"] == "9"
    nlu = limited.get("/test-nlu-get", params={"message": "balance"})
    assert nlu.status_code == 200 and nlu.headers["X-RateLimit-Remaining"] == "9"
    again = limited.post("/assistant", json={**BALANCE, "user_id": 2})
    assert again.headers["X-RateLimit-Remaining"] == "8"


def test_each_websocket_message_counts_and_the_socket_stays_open(limited: TestClient) -> None:
    fresh_window()
    for _ in range(8):
        assert limited.post("/assistant", json=BALANCE).status_code == 200
    with limited.websocket_connect("/api/ai/chat/ws?user_id=1") as socket:
        for _ in range(2):
            socket.send_json({"type": "chat", "message": "what's my balance"})
            assert socket.receive_json()["type"] == "chat_start"
            while socket.receive_json()["type"] != "chat_end":
                pass
        socket.send_json({"type": "chat", "message": "what's my balance"})
        error = socket.receive_json()
        assert error["type"] == "error"
        assert error["message"].startswith("Too many requests: the limit is 10 requests")
        socket.send_json({"type": "ping"})
        assert socket.receive_json() == {"type": "pong"}


def test_the_limit_holds_across_server_processes(sqlite_url: str, redis_prefix: str) -> None:
    """Two apps sharing Redis share the count."""
    shared = {"REDIS_URL": REDIS_URL, "BANKBOT_SESSIONS__KEY_PREFIX": redis_prefix}
    settings = settings_for(sqlite_url, BANKBOT_LIMITS__REQUESTS="10", **shared, **DEMO)
    fresh_window()
    with (
        TestClient(create_app(settings)) as first,
        TestClient(create_app(settings)) as second,
    ):
        for client in [first, second] * 5:
            assert client.post("/assistant", json=BALANCE).status_code == 200
        assert first.post("/assistant", json=BALANCE).status_code == 429
        assert second.post("/assistant", json=BALANCE).status_code == 429


def test_the_eleventh_transfer_in_an_hour_is_refused_and_says_when(sqlite_url: str) -> None:
    settings = settings_for(sqlite_url, BANKBOT_LIMITS__TRANSFERS="10", **DEMO)
    assert settings.limits.transfers_window_s == 3600
    fresh_window(3600, margin_s=30)
    with TestClient(create_app(settings)) as client:
        ledger = client.app.state.services.dialogue.assistant.ledger

        def send(amount: int) -> dict:
            body = {"user_id": 1, "message": f"send {amount} to ravi", "password": PASSWORD}
            return client.post("/assistant", json=body).json()

        # A transfer refused for another reason does not count.
        assert send(50_000)["reply"].startswith("Insufficient balance.")
        for _ in range(10):
            assert send(1)["data"]["success"] is True
        refused = send(1)
        assert refused["data"]["success"] is False
        assert refused["reply"].startswith(
            "You have reached the limit of 10 transfers per hour. Nothing was sent. "
            "You can send money again in "
        )
        assert ledger.balance(1) == 1_000_000 - 10 * 100
        # A conversation is refused the same way, and the money stays.
        turn = {"user_id": 1, "session_id": "later", "message": "send 1 to ravi"}
        client.post("/assistant", json=turn)
        again = client.post("/assistant", json={**turn, "message": "ok", "password": PASSWORD})
        assert "limit of 10 transfers per hour" in again.json()["reply"]
        assert ledger.balance(1) == 1_000_000 - 10 * 100
        reasons = [row.reason for row in AuditLog(ledger.engine).for_user(1)]
        assert reasons == ["insufficient_funds", *[None] * 10, "transfer_limit", "transfer_limit"]


def test_the_sixth_password_in_15_minutes_is_refused_on_any_channel_even_when_right(
    sqlite_url: str,
) -> None:
    """Five wrong passwords, one on each channel; then the right one is refused on each."""
    with TestClient(create_app(settings_for(sqlite_url, **DEMO))) as client:
        _brute_force(client)


def _brute_force(client: TestClient) -> None:
    locked = "Too many wrong passwords. Transfers are locked for 15 minutes. Nothing was sent."
    send = {"user_id": 1, "message": "send 100 to ravi"}
    wrong = "not-my-password"

    def websocket(password: str) -> str:
        """Sends the password when asked for it, like a client: the last reply."""
        with client.websocket_connect("/api/ai/chat/ws?user_id=1") as socket:
            event = {"type": "chat", "message": send["message"]}
            while event:
                socket.send_json(event)
                words = []
                while (reply := socket.receive_json())["type"] != "chat_end":
                    words.append(reply.get("content", ""))
                asked = reply["data"]["require_password"] and event["type"] == "chat"
                event = {"type": "password", "password": password} if asked else None
        return "".join(words)

    def support(password: str) -> str:
        started = client.post("/chat/start", json={"user_id": 1}).json()
        body = {"conversation_id": started["conversation_id"], **send, "password": password}
        del body["user_id"]
        return client.post("/chat/message", json=body).json()["message"]

    def stateless(password: str) -> str:
        return client.post("/assistant", json={**send, "password": password}).json()["reply"]

    def chat(password: str) -> str:
        body = {**send, "password": password}
        return client.post("/api/ai/chat", json=body).json()["response"]

    def conversation(password: str) -> str:
        turn = {**send, "session_id": f"brute-{password}"}
        asked = client.post("/api/v1/assistant", json=turn).json()
        if not asked["data"]["require_password"]:
            return asked["reply"]
        confirm = {**turn, "message": "yes", "password": password}
        return client.post("/api/v1/assistant", json=confirm).json()["reply"]

    channels = [stateless, chat, websocket, support, conversation]
    answers = [channel(wrong) for channel in channels]
    assert all(answer.startswith("Incorrect password") for answer in answers[:4]), answers
    assert answers[4] == locked
    for channel in channels:
        assert channel(PASSWORD) == locked, channel.__name__
    assert client.app.state.services.dialogue.assistant.ledger.balance(1) == 1_000_000
    reasons = [
        row.reason
        for row in AuditLog(client.app.state.services.dialogue.assistant.ledger.engine).for_user(1)
    ]
    # Audited: every attempt that presented a password (the socket and the conversation
    # are refused before they ask for one).
    assert reasons == ["wrong_password"] * 4 + ["locked"] * 4
