"""Fraud checks through the real app: the extra yes for a high-risk transfer, alerts and
fraud.detected events, GET /api/ai/fraud/analysis and POST /api/v1/fraud/report."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from server import create_app
from tests.conftest import bearer, settings_for

PASSWORD = "password123"
# No night: the replies below are exact whatever the time of day (night has its own tests).
NO_NIGHT = {"BANKBOT_FRAUD__NIGHT_START_HOUR": "0", "BANKBOT_FRAUD__NIGHT_END_HOUR": "0"}
UNUSUAL = (
    "This transfer looks unusual: it is 6 times your usual amount and your first payment to Mike."
)


def app_client(database_url: str, **environ: str) -> TestClient:
    return TestClient(create_app(settings_for(database_url, **NO_NIGHT, **environ)))


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    with app_client(database_url) as test_client:
        yield test_client


@pytest.fixture
def sqlite_client(sqlite_url: str) -> Iterator[TestClient]:
    """For refusals, which do not depend on the database."""
    with app_client(sqlite_url) as test_client:
        yield test_client


def chat(client: TestClient, message: str, session_id: str, **fields: Any) -> dict[str, Any]:
    response = client.post(
        "/api/ai/chat",
        json={"message": message, "session_id": session_id, **fields},
        headers=bearer(client, 1),
    )
    assert response.status_code == 200, response.text
    return response.json()


def balance(client: TestClient, user_id: int) -> int:
    return client.app.state.services.dialogue.assistant.ledger.balance(user_id)


def fraud_events(client: TestClient, user_id: int = 1) -> list[dict[str, Any]]:
    events = client.app.state.services.dialogue.assistant.ledger.events.for_user(
        user_id, "fraud.detected"
    )
    return [event.payload for event in events]


def analysis(client: TestClient, user_id: int = 1) -> dict[str, Any]:
    response = client.get("/api/ai/fraud/analysis", headers=bearer(client, user_id))
    assert response.status_code == 200, response.text
    return response.json()


def report(client: TestClient, body: Any, user_id: int | None = 1) -> httpx.Response:
    headers = {} if user_id is None else bearer(client, user_id)
    return client.post("/api/v1/fraud/report", json=body, headers=headers)


def test_a_high_risk_transfer_asks_for_a_yes_and_no_moves_nothing(client: TestClient) -> None:
    # Even with the password in the same turn, the unusual transfer is explained first.
    first = chat(client, "send 9000 to mike", "no-to-fraud", password=PASSWORD)
    assert first["response"] == (
        f"{UNUSUAL} Send 9,000 rupees to Mike? Say yes to go ahead, or no to cancel."
    )
    assert first["data"]["awaiting"] == "confirmation"
    assert first["data"]["require_password"] is False
    # A password alone is not a yes.
    alone = chat(client, "here it is", "no-to-fraud", password=PASSWORD)
    assert alone["data"]["awaiting"] == "confirmation"
    assert "Say yes to go ahead" in alone["response"]
    cancelled = chat(client, "no", "no-to-fraud")
    assert cancelled["response"] == "Okay, I cancelled the transfer. Nothing was sent."
    assert (balance(client, 1), balance(client, 5)) == (1_000_000, 500_000)
    assert fraud_events(client) == []
    assert analysis(client) == {"total_alerts": 0, "pending_reviews": 0, "alerts": []}


def test_a_yes_to_a_high_risk_transfer_sends_it_with_an_alert(client: TestClient) -> None:
    chat(client, "send 9000 to mike", "yes-to-fraud")
    agreed = chat(client, "yes", "yes-to-fraud")
    assert agreed["response"] == "Send 9,000 rupees to Mike? Please confirm with your password."
    done = chat(client, "confirm", "yes-to-fraud", password=PASSWORD)
    assert done["response"] == (
        "Successfully transferred 9,000 rupees to Mike. Your new balance is 1,000 rupees."
    )
    assert (balance(client, 1), balance(client, 5)) == (100_000, 1_400_000)
    [event] = fraud_events(client)
    assert (event["amount"], event["level"], event["risk_score"]) == (900_000, "high", 70)
    [alert] = analysis(client)["alerts"]
    assert alert["transaction_id"] == event["transfer_id"]
    assert alert["fraud_log_id"] == event["alert_id"]
    assert (alert["amount"], alert["merchant"], alert["risk_score"]) == (9000, "Mike", 70.0)
    assert (alert["level"], alert["status"]) == ("high", "pending")
    assert alert["details"] == "6 times your usual amount. Your first payment to Mike."
    assert analysis(client, 5)["alerts"] == []  # the receiver has no alert


def test_changing_the_receiver_to_an_unusual_one_needs_a_new_yes(client: TestClient) -> None:
    """₹9000 to Ravi (paid before) is medium risk: no question. To Mike it is high."""
    assert chat(client, "send 9000 to ravi", "switch")["data"]["awaiting"] == "password"
    switched = chat(client, "to mike instead", "switch")
    assert switched["response"].startswith(UNUSUAL)
    assert switched["data"]["awaiting"] == "confirmation"


def test_a_medium_risk_transfer_goes_through_with_an_alert(client: TestClient) -> None:
    chat(client, "send 9000 to ravi", "medium")
    done = chat(client, "confirm", "medium", password=PASSWORD)
    assert done["data"]["success"] is True
    [alert] = analysis(client)["alerts"]
    assert (alert["level"], alert["risk_score"], alert["reasons"]) == (
        "medium",
        50.0,
        ["6 times your usual amount"],
    )
    assert [event["level"] for event in fraud_events(client)] == ["medium"]


def test_an_ordinary_transfer_leaves_no_alert(client: TestClient) -> None:
    chat(client, "send 500 to ravi", "ordinary")
    assert chat(client, "confirm", "ordinary", password=PASSWORD)["data"]["success"] is True
    assert analysis(client)["total_alerts"] == 0
    assert fraud_events(client) == []


def test_the_stateless_api_explains_a_high_risk_transfer_before_the_password(
    client: TestClient,
) -> None:
    headers = bearer(client, 1)
    body = {"user_id": 1, "message": "Send 9000 to Mike"}
    first = client.post("/assistant", json=body, headers=headers).json()
    assert first["reply"] == (
        f"{UNUSUAL} I'll send ₹9000 to Mike. Please confirm with your password."
    )
    assert first["data"] == {"require_password": True, "success": False}
    assert balance(client, 1) == 1_000_000
    second = client.post("/assistant", json={**body, "password": PASSWORD}, headers=headers)
    assert second.json()["data"]["success"] is True
    assert [event["level"] for event in fraud_events(client)] == ["high"]


def test_night_time_adds_to_the_reasons(sqlite_url: str) -> None:
    """Night all day long (00:00 to 24:00): three reasons, said as one sentence."""
    all_night = {"BANKBOT_FRAUD__NIGHT_START_HOUR": "0", "BANKBOT_FRAUD__NIGHT_END_HOUR": "24"}
    with TestClient(create_app(settings_for(sqlite_url, **all_night))) as client:
        asked = chat(client, "send 5000 to mike", "night")
        assert asked["response"] == (
            "This transfer looks unusual: it is 3 times your usual amount, your first payment "
            "to Mike and late at night. Send 5,000 rupees to Mike? Say yes to go ahead, or no "
            "to cancel."
        )
        chat(client, "yes", "night", password=PASSWORD)
        [alert] = analysis(client)["alerts"]
        assert (alert["risk_score"], alert["level"]) == (65.0, "high")
        assert alert["details"].endswith("Late at night.")


def test_a_transfer_the_balance_cannot_cover_is_not_asked_about(client: TestClient) -> None:
    """It would only be refused after the question: the documented refusal comes first."""
    first = chat(client, "send 15000 to mike", "short")
    assert first["response"] == "Send 15,000 rupees to Mike? Please confirm with your password."
    refused = chat(client, "confirm", "short", password=PASSWORD)
    assert refused["response"].startswith("Insufficient balance.")
    assert fraud_events(client) == []


def made_transfer(client: TestClient) -> str:
    """A high-risk transfer made by user 1; its transfer id."""
    chat(client, "send 9000 to mike", "made")
    chat(client, "yes", "made", password=PASSWORD)
    [alert] = analysis(client)["alerts"]
    return alert["transaction_id"]


def test_reporting_a_payment_opens_a_case_and_marks_its_alert(client: TestClient) -> None:
    transfer_id = made_transfer(client)
    response = report(
        client,
        {"transaction_id": transfer_id, "reason": "unauthorized_transfer", "description": "no"},
    )
    assert response.status_code == 201, response.text
    case = response.json()
    assert set(case) == {
        "case_id",
        "status",
        "transaction_id",
        "amount",
        "reported_at",
        "provisional_credit",
        "estimated_resolution",
    }
    assert (case["status"], case["transaction_id"], case["amount"]) == ("open", transfer_id, 9000)
    assert case["provisional_credit"] is None
    assert case["reported_at"].endswith("Z") and case["estimated_resolution"] > case["reported_at"]
    view = analysis(client)
    assert (view["total_alerts"], view["pending_reviews"]) == (1, 0)
    assert view["alerts"][0]["status"] == "reported"
    again = report(client, {"transaction_id": transfer_id, "reason": "scam"})
    assert again.status_code == 409
    assert again.json()["error_code"] == "ALREADY_REPORTED"
    assert case["case_id"] in again.json()["message"]
    assert balance(client, 1) == 100_000  # a report moves no money


def test_a_statement_entry_can_be_reported_by_its_id(client: TestClient) -> None:
    """User 1's demo statement: payments (debits) and money received (credits)."""
    with client.app.state.services.dialogue.assistant.ledger.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT id, type, amount FROM ledgerentry WHERE account_id = 1 ORDER BY id"
        ).all()
    payment = next(row.id for row in rows if row.type == "debit")
    received = next(row.id for row in rows if row.type == "credit")
    response = report(client, {"transaction_id": payment, "reason": "not_recognised"})
    assert response.status_code == 201, response.text
    assert response.json()["transaction_id"] == str(payment)
    refused = report(client, {"transaction_id": received, "reason": "scam"})
    assert refused.status_code == 422
    assert refused.json() == {
        "status": "error",
        "error_code": "INVALID_REQUEST",
        "message": "Only money sent from your account can be reported as fraud.",
    }


def test_another_users_payment_is_not_found_to_them(client: TestClient) -> None:
    transfer_id = made_transfer(client)
    response = report(client, {"transaction_id": transfer_id, "reason": "scam"}, user_id=2)
    assert response.status_code == 404
    assert response.json() == {
        "status": "error",
        "error_code": "NOT_FOUND",
        "message": "You have no transaction with that id.",
    }
    assert analysis(client, 2) == {"total_alerts": 0, "pending_reviews": 0, "alerts": []}
    # The receiver's side of it is money received, not a payment of theirs.
    receiver = report(client, {"transaction_id": transfer_id, "reason": "scam"}, user_id=5)
    assert receiver.status_code == 422
    assert analysis(client)["alerts"][0]["status"] == "pending"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"transaction_id": "abc"},
        {"reason": "scam"},
        {"transaction_id": "abc", "reason": "because"},
        {"transaction_id": "", "reason": "scam"},
        {"transaction_id": "a b", "reason": "scam"},
        {"transaction_id": "x" * 65, "reason": "scam"},
        {"transaction_id": None, "reason": "scam"},
        {"transaction_id": 1.5, "reason": "scam"},
        {"transaction_id": "abc", "reason": "scam", "description": "x" * 1001},
        {"transaction_id": "abc", "reason": "scam", "description": "nul\u0000"},
        ["abc", "scam"],
    ],
)
def test_bad_reports_are_refused(sqlite_client: TestClient, body: Any) -> None:
    response = report(sqlite_client, body)
    assert response.status_code == 422, response.text
    assert "detail" in response.json()


def test_unknown_transactions_are_not_found(sqlite_client: TestClient) -> None:
    for unknown in ("no-such-transfer", "999999", 2**70, "\u0663"):  # an Arabic-Indic 3
        response = report(sqlite_client, {"transaction_id": unknown, "reason": "scam"})
        assert response.status_code == 404, unknown


def test_the_fraud_routes_need_a_token(sqlite_client: TestClient) -> None:
    assert sqlite_client.get("/api/ai/fraud/analysis").status_code == 401
    no_token = report(sqlite_client, {"transaction_id": "abc", "reason": "scam"}, user_id=None)
    assert no_token.status_code == 401
    assert no_token.headers["WWW-Authenticate"] == "Bearer"
    bad = sqlite_client.get("/api/ai/fraud/analysis", headers={"Authorization": "Bearer nonsense"})
    assert bad.status_code == 401
