"""The outbox: a listener on the domain events that queues one delivery per subscription.

It runs inside the transaction that writes the event (banking/events.py), so a committed
transfer always has its deliveries queued and a rolled-back one has none; a crash after
the commit loses nothing, since the dispatcher finds the rows when the server is back.

The body is fixed here, once: every attempt sends the same bytes with the same signature.
Its shape is seeds/002's webhook payload. `data` carries only what the receiver needs:
amounts in rupees, the counterparty's name masked as in the logs, never a balance, a
password or anything else the event holds.
"""

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, select

from banking.logs import mask
from banking.models import Event
from banking.money import rupees_number
from banking.webhooks.models import WebhookDelivery, WebhookSubscription
from banking.webhooks.subscriptions import WEBHOOK_EVENTS

# Event payload key → how it appears in the webhook's data; keys not named are left out.
_DATA_FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "transfer_id": ("transaction_id", str),
    "amount": ("amount", rupees_number),
    "counterparty": ("counterparty", mask),
    "channel": ("channel", str),
    "reason": ("reason", str),
    "alert_id": ("alert_id", str),
    "risk_score": ("risk_score", float),
    "level": ("level", str),
    "reasons": ("reasons", list),
}
_STATUS = {"transaction.completed": "completed", "transaction.failed": "failed"}


def public_event_id(event_id: int) -> str:
    """The id receivers deduplicate by: the same on every attempt of a delivery."""
    return f"EVT_{event_id}"


def webhook_body(event: Event) -> str:
    data = {
        name: convert(event.payload[key])
        for key, (name, convert) in _DATA_FIELDS.items()
        if event.payload.get(key) is not None
    }
    counterparty = event.payload.get("counterparty")
    if counterparty and "reasons" in data:  # "your first payment to Ravi" names them too
        data["reasons"] = [
            str(reason).replace(counterparty, mask(counterparty)) for reason in data["reasons"]
        ]
    if "amount" in data:
        data["currency"] = "INR"
    if event.type in _STATUS:
        data["status"] = _STATUS[event.type]
    assert event.id is not None  # Events.add flushed it
    body = {
        "event_id": public_event_id(event.id),
        "event_type": event.type,
        "timestamp": event.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": data,
    }
    return json.dumps(body, separators=(",", ":"))


def queue_deliveries(session: Session, event: Event) -> None:
    """The Events listener: a pending delivery for each of the user's subscriptions to
    this event's type, due now."""
    if event.type not in WEBHOOK_EVENTS:
        return
    query = select(WebhookSubscription).where(WebhookSubscription.user_id == event.user_id)
    subscribed = [s for s in session.exec(query) if event.type in s.events]
    if not subscribed:
        return
    now = datetime.now(UTC)
    body = webhook_body(event)
    assert event.id is not None  # Events.add flushed it
    session.add_all(
        WebhookDelivery(
            subscription_id=subscription.id,
            event_id=event.id,
            event_type=event.type,
            body=body,
            next_attempt_at=now,
            created_at=now,
        )
        for subscription in subscribed
    )
