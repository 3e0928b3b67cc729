"""The real app with webhooks sent quickly, to a receiver on 127.0.0.1."""

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from server import create_app
from tests.conftest import bearer, settings_for

PASSWORD = "password123"
# Fast enough for tests: an attempt may take 1 s, retries after 0.3 s, 0.6 s, 1.2 s ...
FAST = {
    "BANKBOT_WEBHOOKS__ALLOWED_PRIVATE_HOSTS": "[127.0.0.1]",
    "BANKBOT_WEBHOOKS__POLL_INTERVAL_S": "0.05",
    "BANKBOT_WEBHOOKS__TIMEOUT_S": "1",
    "BANKBOT_WEBHOOKS__RETRY_BASE_S": "0.3",
    "BANKBOT_WEBHOOKS__LEASE_S": "3",
}

AppFactory = Callable[..., TestClient]


@pytest.fixture
def make_client(database_url: str) -> Iterator[AppFactory]:
    """Starts the real app on the test's database with FAST webhooks and these overrides."""
    clients: list[TestClient] = []

    def make(**environ: str) -> TestClient:
        client = TestClient(create_app(settings_for(database_url, **{**FAST, **environ})))
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def subscribe(client: TestClient, user_id: int, url: str, events: list[str]) -> dict:
    response = client.post(
        "/api/v1/webhooks", json={"url": url, "events": events}, headers=bearer(client, user_id)
    )
    assert response.status_code == 201, response.text
    return response.json()


def send_money(
    client: TestClient, password: str = PASSWORD, message: str = "send 500 to ravi"
) -> dict:
    response = client.post(
        "/assistant",
        json={"user_id": 1, "message": message, "password": password},
        headers=bearer(client, 1),
    )
    assert response.status_code == 200, response.text
    return response.json()


def deliveries(client: TestClient, user_id: int, subscription_id: str) -> list[dict]:
    response = client.get(
        f"/api/v1/webhooks/{subscription_id}/deliveries", headers=bearer(client, user_id)
    )
    assert response.status_code == 200, response.text
    return response.json()["deliveries"]


def wait_for_status(
    client: TestClient, user_id: int, subscription_id: str, status: str, seconds: float = 20
) -> list[dict]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rows = deliveries(client, user_id, subscription_id)
        if rows and all(row["status"] == status for row in rows):
            return rows
        time.sleep(0.05)
    raise AssertionError(f"deliveries not all {status}: {rows}")


def verified(secret: str, headers: dict[str, str], body: bytes) -> dict:
    """The body as JSON, after checking its signature as a receiver would."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-webhook-signature"], expected)
    return json.loads(body)
