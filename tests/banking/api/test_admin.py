"""Observability against the real app: /health/detailed, /api/status, /api/metrics and
Prometheus text at /metrics (parsed with prometheus_client's own parser), who may read
them, counters that move with real requests, turns, transfers and sockets, components
reported down when they are, and seeds/002's conversation metadata on /api/ai/chat."""

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from banking.audit import AuditLog
from banking.db import DATABASE_RETRY_S
from dialogue.monitoring import pii
from server import create_app
from tests.conftest import POSTGRES_ADMIN_URL, REDIS_URL, bearer, free_port, settings_for

SCRAPE_TOKEN = "scrape-" + "s" * 40
RIGHT, WRONG = "password123", "not-the-password"


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of a Prometheus text exposition: (name, labels) → value."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(scraped: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def app_client(sqlite_url: str) -> Iterator[TestClient]:
    settings = settings_for(sqlite_url, BANKBOT_OBSERVABILITY__METRICS_TOKEN=SCRAPE_TOKEN)
    with TestClient(create_app(settings)) as client:
        client.app.state.services.bank.users.grant("mary@example.com", "admin")  # user 4
        yield client


def admin(client: TestClient) -> dict[str, str]:
    return bearer(client, 4)


def scrape(client: TestClient) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


# --- who may read what ---------------------------------------------------------------

ADMIN_ONLY = ["/health/detailed", "/api/metrics", "/metrics"]


@pytest.mark.parametrize("path", ADMIN_ONLY)
def test_the_admin_endpoints_refuse_no_token_a_customer_and_a_bad_token(
    app_client: TestClient, path: str
) -> None:
    no_token = app_client.get(path)
    assert no_token.status_code == 401
    assert no_token.json()["error_code"] == "UNAUTHORIZED"
    customer = app_client.get(path, headers=bearer(app_client, 1))
    assert customer.status_code == 403
    assert customer.json()["error_code"] == "FORBIDDEN"
    tampered = app_client.get(path, headers={"Authorization": "Bearer not.a.token"})
    assert tampered.status_code == 401
    wrong_scheme = app_client.get(path, headers={"Authorization": f"Basic {SCRAPE_TOKEN}"})
    assert wrong_scheme.status_code == 401
    assert app_client.get(path, headers=admin(app_client)).status_code == 200


def test_the_scrape_token_reads_metrics_and_nothing_else(app_client: TestClient) -> None:
    scraper = {"Authorization": f"Bearer {SCRAPE_TOKEN}"}
    assert app_client.get("/metrics", headers=scraper).status_code == 200
    assert app_client.get("/api/metrics", headers=scraper).status_code == 401
    assert app_client.get("/health/detailed", headers=scraper).status_code == 401
    almost = {"Authorization": f"Bearer {SCRAPE_TOKEN[:-1]}x"}
    assert app_client.get("/metrics", headers=almost).status_code == 401


def test_without_a_scrape_token_configured_only_admins_read_metrics(sqlite_url: str) -> None:
    with TestClient(create_app(settings_for(sqlite_url))) as client:
        assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 401
        assert client.get("/metrics", headers=bearer(client, 1)).status_code == 403


def test_a_short_scrape_token_stops_the_start(sqlite_url: str) -> None:
    from server import ConfigError

    with pytest.raises(ConfigError, match="metrics_token"):
        settings_for(sqlite_url, BANKBOT_OBSERVABILITY__METRICS_TOKEN="short")


def test_status_is_open_and_holds_no_user_data(app_client: TestClient) -> None:
    app_client.post(
        "/assistant", json={"user_id": 1, "message": "balance"}, headers=bearer(app_client, 1)
    )
    response = app_client.get("/api/status")
    assert response.status_code == 200
    assert response.json() == {
        "ai_backend": "rules",
        "ai_available": True,
        "db_type": "sqlite",
        "cache_type": "memory",
        "version": app_client.app.version,
    }


def test_the_observability_routes_take_only_get(app_client: TestClient) -> None:
    for path in ["/health/detailed", "/api/status", "/api/metrics", "/metrics"]:
        assert app_client.post(path, headers=admin(app_client)).status_code == 405


# --- /health/detailed ----------------------------------------------------------------


def test_detailed_health_probes_each_component(database_url: str) -> None:
    with TestClient(create_app(settings_for(database_url, BANKBOT_DEMO_MODE="1"))) as client:
        response = client.get("/health/detailed")  # demo mode: no token needed
        body = response.json()
    assert response.status_code == 200
    assert body["status"] == "healthy"
    assert body["environment"] == "demo"
    assert body["version"] == client.app.version
    assert body["uptime_s"] >= 0
    database = body["components"]["database"]
    assert database["status"] == "healthy"
    assert database["backend"] == make_url(database_url).get_backend_name()
    assert database["latency_ms"] > 0
    pool = database["connection_pool"]
    assert 0 <= pool["active"] <= pool["max"] and pool["idle"] >= 0
    assert body["components"]["session_store"]["backend"] == "memory"
    assert body["components"]["session_store"]["status"] == "healthy"
    # The test app runs the rules stage alone and no voice: the others are off, not down.
    for part in ("rasa", "llm", "stt", "tts"):
        assert body["components"][part] == {"status": "off"}


def test_detailed_health_pings_redis_and_reports_it_down_when_it_is(
    sqlite_url: str, redis_prefix: str
) -> None:
    up = settings_for(sqlite_url, REDIS_URL=REDIS_URL, BANKBOT_SESSIONS__KEY_PREFIX=redis_prefix)
    with TestClient(create_app(up)) as client:
        store = client.get("/health/detailed", headers=bearer(client, 1)).status_code
        assert store == 403  # tokens required: a customer may not look
        client.app.state.services.bank.users.grant("mary@example.com", "admin")
        body = client.get("/health/detailed", headers=admin(client)).json()
    redis_part = body["components"]["session_store"]
    assert body["status"] == "healthy"
    assert redis_part["status"] == "healthy" and redis_part["backend"] == "redis"
    assert redis_part["latency_ms"] > 0 and redis_part["memory_usage_mb"] > 0

    closed_port = free_port()  # nothing listens there
    down = settings_for(
        sqlite_url,
        REDIS_URL=f"redis://127.0.0.1:{closed_port}/0",
        BANKBOT_SESSIONS__TIMEOUT_S="0.5",
    )
    with TestClient(create_app(down)) as client:
        response = client.get("/health/detailed", headers=admin(client))
        status = client.get("/api/status").json()
    assert response.status_code == 200  # degraded, still serving
    assert response.json()["status"] == "degraded"
    assert response.json()["components"]["session_store"]["status"] == "down"
    assert response.json()["components"]["database"]["status"] == "healthy"
    assert status["cache_type"] == "redis"


@pytest.fixture
def doomed_postgres() -> Iterator[tuple[str, str]]:
    """A PostgreSQL database of this test's own, which the test drops while the app runs."""
    admin_url = make_url(POSTGRES_ADMIN_URL)
    name = f"bankbot_doomed_{uuid.uuid4().hex[:12]}"
    conninfo = admin_url.set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield admin_url.set(database=name).render_as_string(False), conninfo
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_with_the_database_gone_health_is_unhealthy_and_errors_are_counted(
    doomed_postgres: tuple[str, str],
) -> None:
    database_url, conninfo = doomed_postgres
    settings = settings_for(database_url, BANKBOT_DEMO_MODE="1")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        turn = {"user_id": 1, "message": "check my balance"}
        assert client.post("/assistant", json=turn).status_code == 200
        name = make_url(database_url).database
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        failed = client.post("/assistant", json=turn)
        health = client.get("/health/detailed")
        metrics = client.get("/api/metrics").json()
        scraped = samples(client.get("/metrics").text)
    assert failed.status_code == 503  # the database is away: try again, not a server error
    assert failed.json()["error_code"] == "SERVICE_UNAVAILABLE"
    assert failed.headers["Retry-After"] == str(DATABASE_RETRY_S)
    assert health.status_code == 503
    assert health.json()["status"] == "unhealthy"
    assert health.json()["components"]["database"]["status"] == "down"
    assert metrics["requests"]["errors"] == 2  # every 5xx: the refused turn and the health
    assert metrics["requests"]["error_rate_pct"] == 66.67  # 2 of the 3 requests before it
    assert [(e["method"], e["route"], e["status"]) for e in metrics["recent_errors"]] == [
        ("POST", "/assistant", 503),
        ("GET", "/health/detailed", 503),
    ]
    http = "bankbot_http_request_duration_seconds_count"
    assert value(scraped, http, method="POST", route="/assistant", status="503") == 1
    assert value(scraped, http, method="GET", route="/health/detailed", status="503") == 1


# --- counters that move --------------------------------------------------------------


def test_turns_transfers_and_requests_move_the_prometheus_counters(
    app_client: TestClient,
) -> None:
    before = scrape(app_client)
    john = bearer(app_client, 1)

    def say(message: str, password: str | None = None) -> dict:
        body = {"user_id": 1, "message": message, "password": password}
        response = app_client.post("/assistant", json=body, headers=john)
        assert response.status_code == 200
        return response.json()

    assert say("check my balance")["page"] == "home"
    assert say("send 500 to ravi", RIGHT)["data"]["success"] is True
    assert say("send 700 to jane", WRONG)["data"]["success"] is False
    assert say("send 99999 to jane", RIGHT)["data"]["success"] is False  # balance too low
    say("what is the weather on mars")
    assert app_client.get("/tickets/no-such-ticket", headers=john).status_code == 404
    for n in range(25):  # random paths share one label
        assert app_client.get(f"/no/such/path/{n}").status_code == 404
    after = scrape(app_client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    transfers = "bankbot_transfers_total"
    assert moved(transfers, outcome="completed", reason="none") == 1
    assert moved(transfers, outcome="refused", reason="wrong_password") == 1
    assert moved(transfers, outcome="refused", reason="insufficient_funds") == 1
    assert moved("bankbot_nlu_decisions_total", source="rules") == 5
    assert moved("bankbot_nlu_stage_duration_seconds_count", stage="rules") == 5
    for stage in ("nlu", "dialogue", "total"):
        count = "bankbot_turn_stage_duration_seconds_count"
        assert moved(count, channel="assistant", stage=stage) == 5
    assert moved("bankbot_nlu_confidence_count") == 5
    http = "bankbot_http_request_duration_seconds_count"
    assert moved(http, method="POST", route="/assistant", status="200") == 5
    assert moved(http, method="GET", route="/tickets/{ticket_id}", status="404") == 1
    assert moved(http, method="GET", route="unmatched", status="404") == 25
    assert not any("/no/such/path" in str(labels) for _, labels in after)
    # A histogram's buckets are cumulative and end with +Inf == count.
    inf = value(
        after,
        "bankbot_http_request_duration_seconds_bucket",
        method="POST",
        route="/assistant",
        status="200",
        le="+Inf",
    )
    assert inf == value(after, http, method="POST", route="/assistant", status="200")


def test_api_metrics_reports_what_happened_in_the_documented_shape(
    app_client: TestClient,
) -> None:
    john = bearer(app_client, 1)
    start = app_client.get("/api/metrics", headers=admin(app_client)).json()
    assert set(start) >= {
        "uptime_seconds",
        "requests",
        "websocket",
        "ai",
        "cache",
        "route_timings",
        "recent_errors",
    }
    assert set(start["requests"]) == {"total", "errors", "auth_failures", "error_rate_pct"}
    body = {"user_id": 1, "message": "send 500 to ravi", "password": RIGHT}
    assert app_client.post("/assistant", json=body, headers=john).status_code == 200
    wrong = {**body, "password": WRONG}
    assert app_client.post("/assistant", json=wrong, headers=john).status_code == 200
    assert app_client.post("/assistant", json=body).status_code == 401  # no token
    janes = bearer(app_client, 2)
    assert app_client.post("/assistant", json=body, headers=janes).status_code == 403
    assert app_client.post("/assistant", json={"user_id": 1}, headers=john).status_code == 422
    end = app_client.get("/api/metrics", headers=admin(app_client)).json()

    assert end["uptime_seconds"] >= start["uptime_seconds"]
    # The first /api/metrics call was counted after it answered; five requests since.
    assert end["requests"]["total"] == start["requests"]["total"] + 6
    assert end["requests"]["auth_failures"] == start["requests"]["auth_failures"] + 2
    assert end["requests"]["errors"] == 0 and end["requests"]["error_rate_pct"] == 0.0
    assistant = end["route_timings"]["/assistant"]
    assert assistant["calls"] == 5
    assert 0 < assistant["avg_ms"] <= assistant["max_ms"]
    rules = end["ai"]["by_provider"]["rules"]
    assert rules["calls"] == 2 and rules["errors"] == 0 and rules["avg_latency_ms"] > 0
    assert rules["p95_latency_ms"] is None  # fewer than 20 calls
    assert end["ai"]["fallbacks"] == 0  # one stage: nothing to fall back to
    assert end["transfers"] == {
        "completed": 1,
        "refused": {"wrong_password": 1},
        "success_rate_pct": 50.0,
    }
    assert end["nlu"]["turns"] == 2 and end["nlu"]["decided_by"] == {"rules": 2}
    assert end["cache"] == {"hits": 0, "misses": 0, "hit_ratio_pct": None}  # no voice


def test_chat_socket_connections_are_counted(app_client: TestClient) -> None:
    token = app_client.app.state.services.bank.tokens.issue(1).access_token
    with app_client.websocket_connect(f"/api/ai/chat/ws?token={token}") as socket:
        socket.send_json({"type": "ping"})
        assert socket.receive_json() == {"type": "pong"}
        during = app_client.get("/api/metrics", headers=admin(app_client)).json()["websocket"]
    after = app_client.get("/api/metrics", headers=admin(app_client)).json()["websocket"]
    assert during == {"total_connects": 1, "open": 1}
    assert after == {"total_connects": 1, "open": 0}
    scraped = scrape(app_client)
    assert value(scraped, "bankbot_websocket_connections_total", route="/api/ai/chat/ws") == 1
    assert value(scraped, "bankbot_websocket_open") == 0


def test_each_app_counts_its_own_requests(sqlite_url: str, tmp_path) -> None:
    other_url = f"sqlite:///{tmp_path / 'other.db'}"
    demo = {"BANKBOT_DEMO_MODE": "1"}
    with (
        TestClient(create_app(settings_for(sqlite_url, **demo))) as first,
        TestClient(create_app(settings_for(other_url, **demo))) as second,
    ):
        for _ in range(3):
            first.post("/assistant", json={"user_id": 1, "message": "balance"})
        counted = [
            value(
                samples(client.get("/metrics").text),
                "bankbot_http_request_duration_seconds_count",
                method="POST",
                route="/assistant",
                status="200",
            )
            for client in (first, second)
        ]
    assert counted == [3, 0]


# --- conversation metadata -----------------------------------------------------------


def test_chat_replies_carry_the_conversation_metadata(app_client: TestClient) -> None:
    john = bearer(app_client, 1)
    response = app_client.post("/api/ai/chat", json={"message": "what's my balance"}, headers=john)
    assert response.status_code == 200
    body = response.json()
    metadata = body["metadata"]
    assert metadata["session_id"] == body["session_id"]
    assert metadata["model_used"] == "rules"
    assert metadata["confidence_score"] == 0.95
    assert metadata["processing_time_ms"] > 0
    assert metadata["pii_detected"] == [] and metadata["pii_masked"] is False
    assert metadata["audit_log_id"] is None  # no transfer tried
    assert metadata["timestamp"].endswith("+00:00")


def test_personal_data_in_a_message_is_named_and_never_repeated(app_client: TestClient) -> None:
    john = bearer(app_client, 1)
    message = "send 500 to 123456789012"  # an account number where a contact belongs
    body = app_client.post("/api/ai/chat", json={"message": message}, headers=john).json()
    assert body["metadata"]["pii_detected"] == ["account_number"]
    assert body["metadata"]["pii_masked"] is True
    assert "123456789012" not in body["response"]
    card = "my card is 4111 1111 1111 1111, mail jo@example.com"
    body = app_client.post("/api/ai/chat", json={"message": card}, headers=john).json()
    assert body["metadata"]["pii_detected"] == ["card_number", "email"]
    amounts = app_client.post(
        "/api/ai/chat", json={"message": "send 100000 to ravi"}, headers=john
    ).json()
    assert amounts["metadata"]["pii_detected"] == []  # an amount is not personal data


def test_a_chat_transfer_names_its_audit_row(app_client: TestClient) -> None:
    john = bearer(app_client, 1)
    first = app_client.post("/api/ai/chat", json={"message": "send 300 to jane"}, headers=john)
    session_id = first.json()["session_id"]
    assert first.json()["metadata"]["audit_log_id"] is None  # asked for the password
    confirm = {"message": "yes", "session_id": session_id, "password": RIGHT}
    second = app_client.post("/api/ai/chat", json=confirm, headers=john).json()
    assert second["data"]["awaiting"] is None
    [row] = AuditLog(app_client.app.state.services.bank.engine).for_user(1)
    assert row.outcome == "completed" and row.channel == "chat"
    assert second["metadata"]["audit_log_id"] == row.id
    wrong = {"message": "send 300 to jane", "session_id": session_id, "password": WRONG}
    third = app_client.post("/api/ai/chat", json=wrong, headers=john).json()
    refused = AuditLog(app_client.app.state.services.bank.engine).for_user(1)[-1]
    assert refused.outcome == "refused" and third["metadata"]["audit_log_id"] == refused.id


@pytest.mark.parametrize(
    ("message", "kinds", "shown"),
    [
        ("to 123456789012 please", ["account_number"], "to ****9012 please"),
        ("card 4111-1111-1111-1111", ["card_number"], "card ****1111"),
        ("card 4111 1111 1111 1112", [], "card 4111 1111 1111 1112"),  # fails Luhn
        ("ring +91 98765 43210", [], "ring +91 98765 43210"),  # split: not one number
        ("ring +91 9876543210", ["phone_number"], "ring ****3210"),
        ("aadhaar 1234 5678 9012", ["aadhaar_number"], "aadhaar ****9012"),
        ("PAN ABCDE1234F", ["pan"], "PAN ****1234"),
        ("write to Jo.Doe@example.co.in", ["email"], "write to J***@example.co.in"),
        # Nine digits or more in a row count as an account number, whatever they mean.
        ("₹1,00,000 or 250000000 paise", ["account_number"], "₹1,00,000 or ****0000 paise"),
        ("send 100000 to mom", [], "send 100000 to mom"),
    ],
)
def test_personal_data_is_found_and_masked(message: str, kinds: list[str], shown: str) -> None:
    found = pii.find(message)
    assert [piece.kind for piece in found] == kinds
    assert pii.mask_in(message, found) == shown


def test_transfers_by_api_are_counted_once_and_a_retry_is_not(app_client: TestClient) -> None:
    headers = {**bearer(app_client, 1), "Idempotency-Key": "obs-retry-1"}
    body = {"amount": 100, "contact": "ravi", "mfa_token": RIGHT}
    path = "/api/v1/accounts/1/transactions"
    before = scrape(app_client)
    first = app_client.post(path, json=body, headers=headers)
    retry = app_client.post(path, json=body, headers=headers)  # the same key: replayed
    wrong = app_client.post(path, json={**body, "mfa_token": WRONG}, headers=bearer(app_client, 1))
    after = scrape(app_client)
    assert first.status_code == retry.status_code and first.json() == retry.json()
    assert wrong.status_code >= 400
    transfers = "bankbot_transfers_total"
    for labels, moved in (
        ({"outcome": "completed", "reason": "none"}, 1),
        ({"outcome": "refused", "reason": "wrong_password"}, 1),
    ):
        assert value(after, transfers, **labels) - value(before, transfers, **labels) == moved
