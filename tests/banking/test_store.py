"""Session stores in process and in Redis, expiry, and what a user sees when Redis is down."""

import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from banking.store import (
    KeyValueStore,
    MemoryStore,
    RedisStore,
    StoreUnavailable,
)
from server import create_app
from tests.conftest import REDIS_URL, free_port, logged_in, settings_for


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest, redis_prefix: str) -> Iterator[KeyValueStore]:
    if request.param == "memory":
        made: KeyValueStore = MemoryStore(ttl_s=1)
    else:
        made = RedisStore(REDIS_URL, ttl_s=1, key_prefix=redis_prefix, timeout_s=2)
    yield made
    made.close()


def test_a_saved_state_is_loaded_replaced_and_deleted(store: KeyValueStore) -> None:
    assert store.load("1:a") is None
    store.save("1:a", '{"step": 1}')
    store.save("1:b", '{"step": 9}')
    assert store.load("1:a") == '{"step": 1}'
    store.save("1:a", '{"step": 2}')
    assert store.load("1:a") == '{"step": 2}'
    store.delete("1:a")
    assert store.load("1:a") is None
    assert store.load("1:b") == '{"step": 9}'
    assert store.status() == "ready"


def test_a_state_expires_after_its_time(store: KeyValueStore) -> None:
    store.save("1:a", "{}")
    time.sleep(1.3)
    assert store.load("1:a") is None


def test_an_unreachable_redis_is_reported_not_hidden() -> None:
    store = RedisStore(
        f"redis://127.0.0.1:{free_port()}/0", ttl_s=60, key_prefix="x:", timeout_s=0.5
    )
    assert store.status() == "unavailable"
    with pytest.raises(StoreUnavailable):
        store.load("1:a")
    with pytest.raises(StoreUnavailable):
        store.save("1:a", "{}")


def test_with_redis_down_the_service_says_so_and_moves_nothing(sqlite_url: str) -> None:
    """Conversations and password counters need the store; balances do not."""
    settings = settings_for(
        sqlite_url,
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        BANKBOT_SESSIONS__TIMEOUT_S="0.5",
    )
    with TestClient(create_app(settings)) as client:
        logged_in(client, 1)  # tokens need no session store
        health = client.get("/health").json()
        assert health["status"] == "degraded"
        assert health["degraded"] == {"sessions": "unavailable"}
        body = {"user_id": 1, "message": "send 500 to ravi", "password": "password123"}
        for request in ({**body, "session_id": "s1"}, body):
            reply = client.post("/assistant", json=request).json()
            assert reply["reply"].startswith("Sorry, part of the service is down")
            assert "Nothing was sent." in reply["reply"]
        assert client.app.state.services.dialogue.assistant.ledger.balance(1) == 1_000_000
        balance = client.post("/assistant", json={"user_id": 1, "message": "my balance"})
        assert balance.json()["reply"] == "Your current account balance is ₹10000"
