"""/api/v1/webhooks: a user's own subscriptions only, with a token, and bad input refused."""

import pytest
from fastapi.testclient import TestClient

from tests.banking.webhooks.conftest import AppFactory, subscribe
from tests.conftest import bearer

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
HOOK = "http://127.0.0.1:9/hook"  # allowed by the tests' allow-list; nothing is sent here


@pytest.fixture
def client(make_client: AppFactory) -> TestClient:
    return make_client(BANKBOT_WEBHOOKS__MAX_SUBSCRIPTIONS_PER_USER="2")


def test_create_list_delete(client: TestClient) -> None:
    made = subscribe(client, 1, HOOK, ["password.failed", "transaction.completed"])
    assert made["id"].startswith("whk_")
    assert made["secret"].startswith("whsec_") and len(made["secret"]) == 6 + 64
    assert made["events"] == ["password.failed", "transaction.completed"]
    assert made["url"] == HOOK
    listed = client.get("/api/v1/webhooks", headers=bearer(client, 1)).json()["webhooks"]
    assert listed == [{k: v for k, v in made.items() if k != "secret"}]  # shown once only
    gone = client.delete(f"/api/v1/webhooks/{made['id']}", headers=bearer(client, 1))
    assert (gone.status_code, gone.content) == (204, b"")
    assert client.get("/api/v1/webhooks", headers=bearer(client, 1)).json() == {"webhooks": []}
    again = client.delete(f"/api/v1/webhooks/{made['id']}", headers=bearer(client, 1))
    assert again.status_code == 404


@SQLITE_ONLY
def test_another_users_token_can_neither_see_nor_delete_nor_read_deliveries(
    client: TestClient,
) -> None:
    johns = subscribe(client, 1, HOOK, ["transaction.completed"])
    jane = bearer(client, 2)
    assert client.get("/api/v1/webhooks", headers=jane).json() == {"webhooks": []}
    refused = client.delete(f"/api/v1/webhooks/{johns['id']}", headers=jane)
    assert refused.status_code == 404
    assert refused.json()["error_code"] == "NOT_FOUND"
    hidden = client.get(f"/api/v1/webhooks/{johns['id']}/deliveries", headers=jane)
    assert hidden.status_code == 404
    listed = client.get("/api/v1/webhooks", headers=bearer(client, 1)).json()["webhooks"]
    assert [w["id"] for w in listed] == [johns["id"]]  # still there


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/webhooks"),
        ("POST", "/api/v1/webhooks"),
        ("DELETE", "/api/v1/webhooks/whk_0"),
        ("GET", "/api/v1/webhooks/whk_0/deliveries"),
    ],
)
def test_no_token_or_a_bad_one_is_401_even_in_demo_mode(
    make_client: AppFactory, method: str, path: str
) -> None:
    client = make_client(BANKBOT_DEMO_MODE="1")
    body = {"url": HOOK, "events": ["transaction.completed"], "user_id": 1}
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        response = client.request(method, f"{path}?user_id=1", json=body, headers=headers)
        assert response.status_code == 401, response.text
        assert response.json()["error_code"] == "UNAUTHORIZED"
    assert client.get("/api/v1/webhooks", headers=bearer(client, 1)).json() == {"webhooks": []}


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://127.0.0.1/hook", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("127.0.0.1:9/hook", "http:// or https://"),
        ("http:///hook", "no host"),
        ("http://127.0.0.1:99999/hook", "not valid"),
        ("http://user:secret@127.0.0.1:9/hook", "user name or password"),
        ("http://localhost:9/hook", "private"),  # not on the allow-list, though it is loopback
        ("http://10.1.2.3/hook", "private"),
        ("http://192.168.0.1/hook", "private"),
        ("http://169.254.169.254/latest/meta-data", "private"),  # cloud metadata
        ("http://[::1]:9/hook", "private"),
        # Private IPv4 inside IPv6: NAT64's prefix, the IPv4-compatible form, a local NAT64
        # prefix and 6to4 (Python calls the first three global).
        ("http://[64:ff9b::a9fe:a9fe]/latest/meta-data", "private"),
        ("http://[64:ff9b::7f00:1]:9/hook", "private"),
        ("http://[::10.1.2.3]/hook", "private"),
        ("http://[::127.0.0.1]:9/hook", "private"),
        ("http://[64:ff9b:1::808:808]/hook", "private"),
        ("http://[2002:c0a8:1::1]/hook", "private"),
        ("http://0.0.0.0:9/hook", "private"),
        ("http://no-such-host.invalid/hook", "cannot be resolved"),
        ("http://127.0.0.1:9/a\x00b", "control characters"),  # PostgreSQL stores no NUL
        ("http://127.0.0.1:9/a b", "spaces"),
        ("http://127.0.0.1:9/\nHost: evil", "control characters"),
        ("https://" + "a" * 2050 + ".com/", None),  # over the length limit
    ],
)
def test_urls_that_may_not_receive_webhooks_are_refused(
    client: TestClient, url: str, why: str | None
) -> None:
    response = client.post(
        "/api/v1/webhooks",
        json={"url": url, "events": ["transaction.completed"]},
        headers=bearer(client, 1),
    )
    assert response.status_code == 422, response.text
    if why is not None:
        assert why in response.json()["message"]
    assert client.get("/api/v1/webhooks", headers=bearer(client, 1)).json() == {"webhooks": []}


@SQLITE_ONLY
def test_a_public_address_is_accepted(client: TestClient) -> None:
    """No request is made when subscribing: the address is only checked."""
    made = subscribe(client, 1, "https://8.8.8.8/bank-events", ["fraud.detected"])
    assert made["url"] == "https://8.8.8.8/bank-events"
    # A public IPv4 address through NAT64 is public too.
    nat64 = subscribe(client, 1, "https://[64:ff9b::808:808]/bank-events", ["fraud.detected"])
    assert nat64["url"] == "https://[64:ff9b::808:808]/bank-events"


@SQLITE_ONLY
@pytest.mark.parametrize(
    "body",
    [
        {"url": HOOK, "events": ["account.updated"]},  # in seeds/002, not offered here
        {"url": HOOK, "events": ["transaction.received"]},
        {"url": HOOK, "events": []},
        {"url": HOOK},
        {"events": ["transaction.completed"]},
        {"url": 12, "events": ["transaction.completed"]},
        {"url": HOOK, "events": "transaction.completed"},
        {"url": "", "events": ["transaction.completed"]},
        [HOOK],
    ],
)
def test_bad_bodies_are_refused(client: TestClient, body: object) -> None:
    response = client.post("/api/v1/webhooks", json=body, headers=bearer(client, 1))
    assert response.status_code == 422, response.text
    assert client.get("/api/v1/webhooks", headers=bearer(client, 1)).json() == {"webhooks": []}


@SQLITE_ONLY
def test_a_body_that_is_not_json_is_refused(client: TestClient) -> None:
    headers = {**bearer(client, 1), "Content-Type": "application/json"}
    response = client.post("/api/v1/webhooks", content=b'{"url": "http://', headers=headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


def test_a_user_may_have_only_so_many_subscriptions(client: TestClient) -> None:
    for _ in range(2):
        subscribe(client, 1, HOOK, ["transaction.completed"])
    refused = client.post(
        "/api/v1/webhooks",
        json={"url": HOOK, "events": ["transaction.completed"]},
        headers=bearer(client, 1),
    )
    assert refused.status_code == 409
    assert refused.json()["error_code"] == "TOO_MANY_WEBHOOKS"
    subscribe(client, 2, HOOK, ["transaction.completed"])  # another user's own count


@SQLITE_ONLY
def test_a_repeated_event_type_is_kept_once(client: TestClient) -> None:
    made = subscribe(client, 1, HOOK, ["fraud.detected", "fraud.detected"])
    assert made["events"] == ["fraud.detected"]


@SQLITE_ONLY
def test_deliveries_limit_is_checked(client: TestClient) -> None:
    made = subscribe(client, 1, HOOK, ["fraud.detected"])
    for limit in ("0", "101", "x"):
        response = client.get(
            f"/api/v1/webhooks/{made['id']}/deliveries?limit={limit}", headers=bearer(client, 1)
        )
        assert response.status_code == 422
