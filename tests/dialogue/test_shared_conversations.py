"""Two server processes sharing PostgreSQL and Redis continue each other's conversations
and count each other's wrong passwords."""

import concurrent.futures
from pathlib import Path

import httpx
import redis

from tests.conftest import NO_LIMITS, REDIS_URL, RULES_ONLY, VOICE_OFF, free_port
from tests.test_server import bearer_of, running_server, wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_turns_on_two_servers_make_one_conversation_and_one_transfer(
    postgres_url: str, redis_prefix: str
) -> None:
    env = {
        **RULES_ONLY,
        **NO_LIMITS,
        **VOICE_OFF,
        "DATABASE_URL": postgres_url,
        "REDIS_URL": REDIS_URL,
        "BANKBOT_SESSIONS__KEY_PREFIX": redis_prefix,
    }
    ports = [free_port(), free_port()]
    with (
        running_server(["--port", str(ports[0])], env) as first,
        running_server(["--port", str(ports[1])], env) as second,
    ):
        server_a, server_b = (f"http://127.0.0.1:{port}" for port in ports)
        wait_for(f"{server_a}/health", first)
        wait_for(f"{server_b}/health", second)
        token = bearer_of(server_a)  # good on both servers

        def turn(server: str, message: str, password: str | None = None) -> dict:
            body = {"user_id": 1, "message": message, "session_id": "shared-1"}
            if password:
                body["password"] = password
            response = httpx.post(f"{server}/assistant", json=body, headers=token, timeout=30)
            assert response.status_code == 200, response.text
            return response.json()

        def balance(server: str) -> str:
            return turn(server, "what's my balance")["reply"]

        assert turn(server_a, "I want to send money")["data"]["awaiting"] == "receiver"
        assert turn(server_b, "ravi")["reply"] == "How much should I send to Ravi?"
        asked = turn(server_a, "five hundred rupees")
        assert asked["reply"] == "Send 500 rupees to Ravi? Please confirm with your password."

        # The confirmation reaches both servers at once (a client retrying on another
        # node): the money moves once.
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            confirmations = list(
                pool.map(
                    lambda server: turn(server, "confirm", "password123"), (server_a, server_b)
                )
            )
        successes = [reply for reply in confirmations if reply["data"].get("success")]
        assert len(successes) == 1, confirmations
        assert "Your new balance is 9,500 rupees." in successes[0]["reply"]

        assert balance(server_a).startswith("Your current account balance is 9,500 rupees.")
        assert balance(server_b).startswith("Your current account balance is 9,500 rupees.")
        assert turn(server_b, "confirm", "password123")["data"].get("success") is not True
        assert balance(server_a).startswith("Your current account balance is 9,500 rupees.")

        # Wrong passwords count on both servers: the sixth is refused, even when right.
        for server in (server_a, server_b, server_a, server_b, server_a):
            turn(server, "send 1 to ravi", "guess")
        refused = turn(server_b, "send 1 to ravi", "password123")
        assert refused["reply"].startswith("Too many wrong passwords.")
        assert balance(server_a).startswith("Your current account balance is 9,500 rupees.")

    # What the servers kept in Redis: conversation states and counters, never a password.
    stored = redis.Redis.from_url(REDIS_URL)
    values = [stored.get(key) or b"" for key in stored.scan_iter(f"{redis_prefix}*")]
    stored.close()
    assert values and not any(b"password123" in value or b"guess" in value for value in values)
