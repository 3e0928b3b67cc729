"""The outbox rows are written in the event's own transaction: with it, or not at all."""

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session, select

from banking import Ledger, make_engine, seed_demo_data
from banking.events import Events
from banking.models import Event
from banking.webhooks import Subscriptions, queue_deliveries
from banking.webhooks.models import WebhookDelivery

DEMO_DATA = Path(__file__).resolve().parents[3] / "data" / "demo_users.yaml"
HOOK = "http://127.0.0.1:9/hook"


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    engine = make_engine(database_url)
    seed_demo_data(engine, DEMO_DATA)
    events = Events(engine)
    events.subscribe(queue_deliveries)
    yield Ledger(engine, events)
    engine.dispose()


def outbox(ledger: Ledger) -> list[WebhookDelivery]:
    with Session(ledger.engine) as session:
        return list(session.exec(select(WebhookDelivery)).all())


def test_a_transfer_queues_one_delivery_per_matching_subscription(ledger: Ledger) -> None:
    subscriptions = Subscriptions(ledger.engine, max_per_user=10)
    both = subscriptions.create(1, HOOK, ["transaction.completed", "transaction.failed"])
    subscriptions.create(1, HOOK, ["password.failed"])  # another type
    subscriptions.create(3, HOOK, ["transaction.completed"])  # Ravi's own sends, not receipts
    receipt = ledger.transfer(1, 3, 50_000, receiver_label="ravi", sender_label="John")
    [row] = outbox(ledger)
    assert row.subscription_id == both.subscription.id
    assert (row.event_type, row.status, row.attempts) == ("transaction.completed", "pending", 0)
    assert receipt.transfer_id in row.body
    assert row.next_attempt_at <= datetime.now(UTC)


def test_a_transfer_rolled_back_after_its_rows_were_written_leaves_no_delivery(
    ledger: Ledger,
) -> None:
    Subscriptions(ledger.engine, max_per_user=10).create(1, HOOK, ["transaction.completed"])

    def fail_after_the_outbox(session: Session, event: Event) -> None:
        if event.type == "transaction.received":  # after the sender's delivery was queued
            raise RuntimeError("the database failed mid-transfer")

    ledger.events.subscribe(fail_after_the_outbox)
    with pytest.raises(RuntimeError):
        ledger.transfer(1, 3, 50_000, receiver_label="ravi", sender_label="John")
    assert outbox(ledger) == []
    assert ledger.balance(1) == 1_000_000
