"""Webhooks delivered by the real app to a real HTTP receiver: signed, only the events
subscribed to, retried with back-off, marked failed when the receiver never answers."""

import json
import time

import pytest

from tests.banking.webhooks.conftest import (
    AppFactory,
    deliveries,
    send_money,
    subscribe,
    verified,
    wait_for_status,
)
from tests.banking.webhooks.receiver import receiving
from tests.conftest import bearer, free_port

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def test_a_transfer_is_delivered_signed_with_the_subscription_secret(
    make_client: AppFactory,
) -> None:
    client = make_client()
    with receiving() as receiver:
        made = subscribe(client, 1, receiver.url, ["transaction.completed"])
        reply = send_money(client)
        assert reply["data"]["success"] is True
        [request] = receiver.wait_for(1)
    [event] = client.app.state.services.bank.events.for_user(1, "transaction.completed")
    body = verified(made["secret"], request.headers, request.body)
    assert body == {
        "event_id": f"EVT_{event.id}",
        "event_type": "transaction.completed",
        "timestamp": body["timestamp"],
        "data": {
            "transaction_id": event.payload["transfer_id"],
            "amount": 500,
            "currency": "INR",
            "counterparty": "R***",  # masked, as in the logs
            "channel": "assistant",
            "status": "completed",
        },
    }
    assert body["timestamp"].endswith("Z")
    assert request.path == "/hook"
    assert request.headers["x-webhook-event-id"] == body["event_id"]
    assert request.headers["content-type"] == "application/json"
    [row] = wait_for_status(client, 1, made["id"], "delivered")
    assert (row["attempts"], row["last_status_code"], row["event_id"]) == (
        1,
        200,
        body["event_id"],
    )


def test_a_signature_made_with_another_secret_does_not_verify(make_client: AppFactory) -> None:
    """Two subscriptions get the same event, each signed with its own secret."""
    client = make_client()
    with receiving() as first, receiving() as second:
        one = subscribe(client, 1, first.url, ["transaction.completed"])
        two = subscribe(client, 1, second.url, ["transaction.completed"])
        send_money(client)
        [a], [b] = first.wait_for(1), second.wait_for(1)
    assert a.body == b.body
    assert verified(one["secret"], a.headers, a.body) == verified(two["secret"], b.headers, b.body)
    with pytest.raises(AssertionError):
        verified(two["secret"], a.headers, a.body)


@SQLITE_ONLY
def test_a_wrong_password_is_sent_as_password_failed_and_only_subscribed_types_go_out(
    make_client: AppFactory,
) -> None:
    client = make_client()
    with receiving() as security, receiving() as payments:
        watching = subscribe(client, 1, security.url, ["password.failed"])
        subscribe(client, 1, payments.url, ["transaction.completed"])
        refused = send_money(client, password="not my password")
        assert refused["data"]["success"] is False
        send_money(client)  # completes
        [payment] = payments.wait_for(1)
        [warning] = security.wait_for(1)
    assert json.loads(payment.body)["event_type"] == "transaction.completed"
    body = verified(watching["secret"], warning.headers, warning.body)
    assert body["event_type"] == "password.failed"
    assert body["data"] == {"channel": "assistant"}
    # The refusal's transaction.failed and the later transfer were not queued for it at all.
    assert [row["event_type"] for row in deliveries(client, 1, watching["id"])] == [
        "password.failed"
    ]
    assert len(security.requests) == 1


@SQLITE_ONLY
def test_a_refused_transfer_is_sent_as_transaction_failed(make_client: AppFactory) -> None:
    client = make_client()
    with receiving() as receiver:
        made = subscribe(client, 1, receiver.url, ["transaction.failed", "transaction.completed"])
        refused = send_money(client, message="send 15000 to ravi")  # John has 10,000
        assert refused["data"]["success"] is False
        [request] = receiver.wait_for(1)
    body = verified(made["secret"], request.headers, request.body)
    assert body["event_type"] == "transaction.failed"
    assert body["data"]["status"] == "failed"
    assert body["data"]["amount"] == 15_000
    assert body["data"]["reason"] == "insufficient_funds"


@SQLITE_ONLY
def test_fraud_detected_is_sent_without_what_the_receiver_need_not_know(
    make_client: AppFactory,
) -> None:
    client = make_client()
    with receiving() as receiver:
        made = subscribe(client, 1, receiver.url, ["fraud.detected"])
        client.app.state.services.bank.events.emit(
            1,
            "fraud.detected",
            {
                "alert_id": "a-1",
                "transfer_id": "t-risky",
                "amount": 84_700,
                "counterparty": "Ravi",
                "risk_score": 78,
                "level": "high",
                "reasons": ["6 times your usual amount", "your first payment to Ravi"],
                "balance_after": 12_345,
                "receiver_user_id": 3,
            },
        )
        [request] = receiver.wait_for(1)
    body = verified(made["secret"], request.headers, request.body)
    assert body["event_type"] == "fraud.detected"
    assert body["data"] == {
        "alert_id": "a-1",
        "transaction_id": "t-risky",
        "amount": 847,
        "currency": "INR",
        "counterparty": "R***",
        "risk_score": 78.0,
        "level": "high",
        "reasons": ["6 times your usual amount", "your first payment to R***"],
    }


@SQLITE_ONLY
def test_a_risky_transfer_sends_fraud_detected_from_the_fraud_check(
    make_client: AppFactory,
) -> None:
    """The real fraud check (banking/fraud.py) scores John's first payment to Jane of most
    of his balance; its event goes out like any other."""
    client = make_client()
    with receiving() as receiver:
        made = subscribe(client, 1, receiver.url, ["fraud.detected"])
        send_money(client, message="send 9000 to jane")
        [request] = receiver.wait_for(1)
    body = verified(made["secret"], request.headers, request.body)
    [alert] = client.app.state.services.bank.fraud.alerts(1)
    assert body["event_type"] == "fraud.detected"
    assert body["data"]["alert_id"] == alert.id
    assert body["data"]["risk_score"] == alert.score
    assert "Jane" not in request.body.decode()


@SQLITE_ONLY
def test_one_users_events_never_reach_another_users_subscription(make_client: AppFactory) -> None:
    client = make_client()
    with receiving() as johns, receiving() as ravis:
        subscribe(client, 1, johns.url, ["transaction.completed"])
        other = subscribe(client, 3, ravis.url, ["transaction.completed"])
        send_money(client)  # John (1) sends to Ravi (3)
        johns.wait_for(1)
    assert ravis.requests == []
    assert deliveries(client, 3, other["id"]) == []


def test_a_receiver_failing_twice_gets_the_event_on_the_third_attempt_after_back_off(
    make_client: AppFactory,
) -> None:
    """First a 500, then no answer within the timeout (1 s), then 200."""
    client = make_client()
    with receiving(script=[500, "hang"], hang_s=2) as receiver:
        made = subscribe(client, 1, receiver.url, ["transaction.completed"])
        send_money(client)
        first, second, third = receiver.wait_for(3)
        [row] = wait_for_status(client, 1, made["id"], "delivered")
    assert first.body == second.body == third.body
    assert len({r.headers["x-webhook-signature"] for r in (first, second, third)}) == 1
    verified(made["secret"], third.headers, third.body)
    # Back-off: 0.3 s after the first failure; 0.6 s after the second, which failed when
    # the 1 s timeout ran out (counted from just before the request reached the receiver:
    # hence the 0.1 s of slack).
    assert second.at - first.at >= 0.3
    assert third.at - second.at >= 1 + 0.6 - 0.1
    assert (row["attempts"], row["last_status_code"], row["last_error"]) == (3, 200, None)
    time.sleep(0.5)
    assert len(receiver.requests) == 3  # delivered: not sent again


def test_a_receiver_that_never_answers_is_marked_failed_after_the_last_attempt(
    make_client: AppFactory,
) -> None:
    client = make_client(BANKBOT_WEBHOOKS__MAX_ATTEMPTS="3")
    down = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    made = subscribe(client, 1, down, ["transaction.completed"])
    send_money(client)
    [row] = wait_for_status(client, 1, made["id"], "failed")
    assert row["attempts"] == 3
    assert "ConnectError" in row["last_error"]
    assert row["next_attempt_at"] is None
    assert row["delivered_at"] is None


@SQLITE_ONLY
def test_a_receiver_answering_500_for_good_is_marked_failed(make_client: AppFactory) -> None:
    client = make_client(BANKBOT_WEBHOOKS__MAX_ATTEMPTS="2")
    with receiving(script=[500, 503]) as receiver:
        made = subscribe(client, 1, receiver.url, ["transaction.completed"])
        send_money(client)
        [row] = wait_for_status(client, 1, made["id"], "failed")
        assert len(receiver.requests) == 2
    assert (row["attempts"], row["last_status_code"], row["last_error"]) == (2, 503, "HTTP 503")


@SQLITE_ONLY
def test_a_deleted_subscription_gets_nothing_more(make_client: AppFactory) -> None:
    client = make_client()
    with receiving(script=[500]) as receiver:
        made = subscribe(client, 1, receiver.url, ["transaction.completed"])
        send_money(client)
        receiver.wait_for(1)
        deadline = time.monotonic() + 10
        while not (rows := deliveries(client, 1, made["id"]))[0]["attempts"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert rows[0]["status"] == "pending"  # its next attempt is due in 0.3 s
        gone = client.delete(f"/api/v1/webhooks/{made['id']}", headers=bearer(client, 1))
        assert gone.status_code == 204
        time.sleep(1)
        assert len(receiver.requests) == 1
    listed = client.get("/api/v1/webhooks", headers=bearer(client, 1)).json()
    assert listed == {"webhooks": []}


@SQLITE_ONLY
def test_a_named_host_is_sent_to_the_address_that_was_checked_with_its_name_kept(
    make_client: AppFactory,
) -> None:
    """The request goes to the checked address, and still names the host it was sent to."""
    client = make_client(BANKBOT_WEBHOOKS__ALLOWED_PRIVATE_HOSTS="[localhost]")
    with receiving() as receiver:
        made = subscribe(
            client, 1, f"http://localhost:{receiver.port}/hook?team=ops", ["fraud.detected"]
        )
        client.app.state.services.bank.events.emit(1, "fraud.detected", {"risk_score": 90})
        [request] = receiver.wait_for(1)
    assert request.headers["host"] == f"localhost:{receiver.port}"
    assert request.path == "/hook?team=ops"
    assert verified(made["secret"], request.headers, request.body)["data"] == {"risk_score": 90.0}
