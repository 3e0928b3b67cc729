"""Who may reach what: every user-data endpoint and channel, HTTP and WebSocket, with no
token, bad tokens, another user's token, the owner's, an agent's and an admin's.

The users: customers A (user 1) and B (user 2), an agent (user 3) and an admin (user 4),
demo users all, the staff roles granted as `server.py --grant-role` does. B has a support
conversation and a ticket; A has a ticket too.
"""

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass

import jwt
import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from server import create_app
from tests.conftest import bearer, settings_for

A, B, AGENT, ADMIN = 1, 2, 3, 4
OTHER_SECRET = "another-installation-secret-0123456789"


@dataclass
class World:
    client: TestClient
    headers: dict[str, dict[str, str]]
    b_conversation: str
    b_ticket: str
    a_ticket: str


def _escalated(client: TestClient, headers: dict[str, str]) -> tuple[str, str]:
    conversation = client.post("/chat/start", json={}, headers=headers).json()["conversation_id"]
    body = {"conversation_id": conversation, "message": "my card was blocked"}
    assert client.post("/chat/message", json=body, headers=headers).status_code == 200
    escalated = client.post(
        "/chat/escalate", json={"conversation_id": conversation}, headers=headers
    )
    return conversation, escalated.json()["ticket_id"]


def _forged(token: str, **claims: object) -> str:
    """The token with changed claims and its old signature."""
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    changed = base64.urlsafe_b64encode(json.dumps({**decoded, **claims}).encode()).rstrip(b"=")
    return f"{header}.{changed.decode()}.{signature}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    database = tmp_path_factory.mktemp("authorization") / "bank.db"
    with TestClient(create_app(settings_for(f"sqlite:///{database}"))) as client:
        users = client.app.state.services.bank.users
        users.grant("ravi@example.com", "agent")
        users.grant("mary@example.com", "admin")
        headers = {name: bearer(client, user) for name, user in
                   (("A", A), ("B", B), ("agent", AGENT), ("admin", ADMIN))}  # fmt: skip
        b_conversation, b_ticket = _escalated(client, headers["B"])
        _, a_ticket = _escalated(client, headers["A"])

        a_token = headers["A"]["Authorization"].removeprefix("Bearer ")
        logged_out = bearer(client, A)
        assert client.post("/api/auth/logout", headers=logged_out).status_code == 200
        refresh = client.app.state.services.bank.tokens.issue(A).refresh_token
        headers |= {
            "none": {},
            "garbage": {"Authorization": "Bearer garbage"},
            "forged as B": {"Authorization": f"Bearer {_forged(a_token, sub=str(B))}"},
            "other secret": {"Authorization": f"Bearer {_signed_elsewhere(a_token)}"},
            "refresh": {"Authorization": f"Bearer {refresh}"},
            "logged out": logged_out,
        }
        yield World(client, headers, b_conversation, b_ticket, a_ticket)


def _signed_elsewhere(token: str) -> str:
    """A well-formed token for user B, signed by another installation."""
    claims = jwt.decode(token, options={"verify_signature": False})
    return jwt.encode({**claims, "sub": str(B)}, OTHER_SECRET, algorithm="HS256")


BALANCE = "what is my balance"
# Each acts on user B or on B's things; {c} is B's conversation, {t} B's ticket.
ROUTES = {
    "assistant": ("post", "/assistant", {"user_id": B, "message": BALANCE}),
    "assistant v1": ("post", "/api/v1/assistant", {"user_id": B, "message": BALANCE}),
    "chat": ("post", "/api/ai/chat", {"user_id": B, "message": BALANCE}),
    "chat start": ("post", "/chat/start", {"user_id": B}),
    "chat start v1": ("post", "/api/v1/chat/start", {"user_id": B}),
    "chat message": ("post", "/chat/message", {"conversation_id": "{c}", "message": BALANCE}),
    "chat history": ("get", "/chat/{c}/messages", None),
    "chat history v1": ("get", "/api/v1/chat/{c}/messages", None),
    "escalate": ("post", "/chat/escalate", {"conversation_id": "{c}"}),
    "ticket": ("get", "/tickets/{t}", None),
    "ticket v1": ("get", "/api/v1/tickets/{t}", None),
    "ticket status": ("patch", "/tickets/{t}/status", {"status": "in_progress"}),
    "admin models": ("get", "/admin/models", None),
    "admin switch": ("post", "/admin/models/no-such-model/switch", None),
}
# Who gets what: 403 for a refused user or role, 404 for another customer's conversation
# or ticket (to them it does not exist), 200 (or the route's own 404) when allowed.
EXPECTED = {
    "A": [403, 403, 403, 403, 403, 404, 404, 404, 404, 404, 404, 403, 403, 403],
    "B": [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 403, 403, 403],
    "agent": [403, 403, 403, 403, 403, 404, 200, 200, 404, 200, 200, 200, 403, 403],
    "admin": [403, 403, 403, 403, 403, 404, 200, 200, 404, 200, 200, 200, 200, 404],
}
UNAUTHENTICATED = ["none", "garbage", "forged as B", "other secret", "refresh", "logged out"]


def _call(world: World, route: str, who: str):
    method, path, body = ROUTES[route]
    fill = {"c": world.b_conversation, "t": world.b_ticket}
    path = path.format(**fill)
    if body is not None:
        body = {key: value.format(**fill) if isinstance(value, str) else value
                for key, value in body.items()}  # fmt: skip
    return world.client.request(method, path, json=body, headers=world.headers[who])


@pytest.mark.parametrize("who", list(EXPECTED))
@pytest.mark.parametrize("route", list(ROUTES))
def test_each_user_and_role_reaches_only_what_is_theirs(world: World, route: str, who: str) -> None:
    expected = EXPECTED[who][list(ROUTES).index(route)]
    response = _call(world, route, who)
    assert response.status_code == expected, response.text
    if expected == 403:
        assert response.json()["error_code"] == "FORBIDDEN"
    if route.startswith("assistant") and expected == 200:
        assert response.json()["data"]["balance"] == 5000  # B's own balance


@pytest.mark.parametrize("who", UNAUTHENTICATED)
@pytest.mark.parametrize("route", list(ROUTES))
def test_no_valid_token_is_401_everywhere(world: World, route: str, who: str) -> None:
    response = _call(world, route, who)
    assert response.status_code == 401, response.text
    assert response.json()["error_code"] == "UNAUTHORIZED"
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_ticket_lists_show_customers_their_own_and_staff_all(world: World) -> None:
    def listed(who: str) -> set[str]:
        response = world.client.get("/tickets", headers=world.headers[who])
        assert response.status_code == 200
        return {ticket["ticket_id"] for ticket in response.json()}

    assert listed("A") == {world.a_ticket}
    assert listed("B") == {world.b_ticket}
    assert listed("agent") == listed("admin") == {world.a_ticket, world.b_ticket}
    for who in UNAUTHENTICATED:
        assert world.client.get("/tickets", headers=world.headers[who]).status_code == 401


def test_what_a_refused_request_would_have_done_did_not_happen(world: World) -> None:
    """A's attempts on B's conversation left no message in it and no transfer."""
    history = world.client.get(
        f"/chat/{world.b_conversation}/messages", headers=world.headers["B"]
    ).json()
    before = len(history)
    ledger = world.client.app.state.services.dialogue.assistant.ledger
    balances = ledger.balance(A), ledger.balance(B)
    attempt = {"conversation_id": world.b_conversation, "message": "send 100 to ravi"}
    assert (
        world.client.post("/chat/message", json=attempt, headers=world.headers["A"]).status_code
        == 404
    )
    transfer = {"user_id": B, "message": "send 100 to ravi", "password": "password123"}
    assert (
        world.client.post("/assistant", json=transfer, headers=world.headers["A"]).status_code
        == 403
    )
    after = world.client.get(
        f"/chat/{world.b_conversation}/messages", headers=world.headers["B"]
    ).json()
    assert len(after) == before
    assert (ledger.balance(A), ledger.balance(B)) == balances


def test_the_token_names_the_user_when_user_id_is_left_out(world: World) -> None:
    chat = world.client.post("/api/ai/chat", json={"message": BALANCE}, headers=world.headers["B"])
    assert chat.json()["data"]["balance"] == 5000
    started = world.client.post("/chat/start", json={}, headers=world.headers["A"])
    assert started.status_code == 200
    history = f"/chat/{started.json()['conversation_id']}/messages"
    assert world.client.get(history, headers=world.headers["B"]).status_code == 404


def test_the_documented_transfer_works_with_a_token(world: World) -> None:
    client = world.client
    form = {"username": "john@example.com", "password": "password123"}
    token = client.post("/api/auth/login", data=form).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    before = client.app.state.services.dialogue.assistant.ledger.balance(A)
    first = client.post(
        "/assistant", json={"user_id": A, "message": "Send 5 to Mom"}, headers=headers
    )
    assert first.json()["data"] == {"require_password": True, "success": False}
    second = client.post(
        "/assistant",
        json={"user_id": A, "message": "Send 5 to Mom", "password": "password123"},
        headers=headers,
    )
    assert second.json()["data"]["success"] is True
    assert client.app.state.services.dialogue.assistant.ledger.balance(A) == before - 500


SOCKET = "/api/ai/chat/ws"


def _refused_socket(client: TestClient, url: str, headers: dict[str, str]) -> str:
    """The error a socket gets before it is closed with 1008."""
    with client.websocket_connect(url, headers=headers) as socket:
        event = socket.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
    assert closed.value.code == 1008
    assert event["type"] == "error"
    return event["message"]


def _balance_over(socket: WebSocketTestSession) -> str:
    socket.send_json({"type": "chat", "message": BALANCE})
    assert socket.receive_json() == {"type": "chat_start"}
    words = []
    while (event := socket.receive_json())["type"] == "chat_chunk":
        words.append(event["content"])
    return "".join(words)


@pytest.mark.parametrize(
    ("who", "message"),
    [
        ("none", "Log in first: connect with ?token=<access token>."),
        ("garbage", "The token is not valid."),
        ("forged as B", "The token is not valid."),
        ("other secret", "The token is not valid."),
        ("refresh", "This is not an access token."),
        ("logged out", "The token was logged out."),
    ],
)
def test_a_socket_without_a_valid_token_is_refused(world: World, who: str, message: str) -> None:
    headers = world.headers[who]
    assert _refused_socket(world.client, SOCKET, headers) == message
    token = headers.get("Authorization", "").removeprefix("Bearer ")
    if token:
        assert _refused_socket(world.client, f"{SOCKET}?token={token}", {}) == message


def test_a_socket_for_another_user_is_refused(world: World) -> None:
    token = world.headers["A"]["Authorization"].removeprefix("Bearer ")
    refusal = _refused_socket(world.client, f"{SOCKET}?token={token}&user_id={B}", {})
    assert refusal == "This token is not for that user."
    by_header = _refused_socket(world.client, f"{SOCKET}?user_id={B}", world.headers["A"])
    assert by_header == "This token is not for that user."


def test_a_socket_takes_its_token_from_the_query_or_the_header(world: World) -> None:
    token = world.headers["B"]["Authorization"].removeprefix("Bearer ")
    with world.client.websocket_connect(f"{SOCKET}?token={token}&user_id={B}") as socket:
        assert _balance_over(socket) == "Your current account balance is 5,000 rupees."
    with world.client.websocket_connect(SOCKET, headers=world.headers["B"]) as socket:
        assert _balance_over(socket) == "Your current account balance is 5,000 rupees."


def test_logging_out_ends_an_open_socket(world: World) -> None:
    headers = bearer(world.client, B)
    with world.client.websocket_connect(SOCKET, headers=headers) as socket:
        assert _balance_over(socket).startswith("Your current account balance is")
        assert world.client.post("/api/auth/logout", headers=headers).status_code == 200
        socket.send_json({"type": "ping"})
        assert socket.receive_json() == {"type": "pong"}
        socket.send_json({"type": "chat", "message": BALANCE})
        assert socket.receive_json() == {"type": "error", "message": "The token was logged out."}
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
    assert closed.value.code == 1008


@pytest.mark.parametrize(
    "request_",
    [
        ("get", "/health", None),
        ("get", "/api/v1/health", None),
        ("post", "/test-nlu", {"message": "send 500 to ravi"}),
        ("get", "/test-nlu-get?message=what%20is%20my%20balance", None),
        ("get", "/openapi.json", None),
        ("get", "/docs", None),
    ],
)
def test_routes_without_user_data_stay_open(world: World, request_: tuple) -> None:
    method, path, body = request_
    assert world.client.request(method, path, json=body).status_code == 200


@pytest.mark.parametrize("who", ["none", "A", "B"])
def test_the_nlu_test_routes_expose_no_user_data(world: World, who: str) -> None:
    """The same answer whoever asks: the sentence's reading, nothing from any account."""
    headers = world.headers[who]
    for message in ("what is my balance", "send 500 to rabi", "show my last 3 transactions"):
        posted = world.client.post("/test-nlu", json={"message": message}, headers=headers)
        got = world.client.get("/test-nlu-get", params={"message": message}, headers=headers)
        assert posted.json() == got.json()
        assert set(posted.json()) == {"input", "result"}
        assert set(posted.json()["result"]) == {
            "intent", "amount", "receiver", "transaction_count", "confidence", "source"
        }  # fmt: skip
        for private in ("5000", "10000", "Ravi", "Jane", "salary", "john@", "@example"):
            assert private not in posted.text
    # The receiver is the word said, not resolved against anyone's contacts.
    reading = world.client.get("/test-nlu-get", params={"message": "send 500 to rabi"})
    assert reading.json()["result"]["receiver"] == "rabi"


def test_demo_mode_serves_requests_without_a_token_and_still_checks_tokens(
    sqlite_url: str,
) -> None:
    settings = settings_for(sqlite_url, BANKBOT_DEMO_MODE="1")
    assert settings.demo_mode is True
    with TestClient(create_app(settings)) as client:
        balance = client.post("/assistant", json={"user_id": B, "message": BALANCE})
        assert balance.json()["data"]["balance"] == 5000
        assert client.get("/admin/models").status_code == 200
        other = client.post(
            "/assistant", json={"user_id": B, "message": BALANCE}, headers=bearer(client, A)
        )
        assert other.status_code == 403
        bad = {"Authorization": "Bearer garbage"}
        assert (
            client.post(
                "/assistant", json={"user_id": B, "message": BALANCE}, headers=bad
            ).status_code
            == 401
        )
        assert client.get("/api/auth/me").status_code == 401  # /me always needs a token
        with client.websocket_connect(f"{SOCKET}?user_id={B}") as socket:
            assert _balance_over(socket) == "Your current account balance is 5,000 rupees."


def test_without_demo_mode_the_documented_token_free_request_is_401(client: TestClient) -> None:
    assert client.app.state.services.settings.demo_mode is False
    response = client.post("/assistant", json={"user_id": A, "message": "Check my balance"})
    assert response.status_code == 401
    assert response.json() == {
        "status": "error",
        "error_code": "UNAUTHORIZED",
        "message": "Log in first: send the access token as 'Authorization: Bearer <token>'.",
    }
