"""Notifications: what a user is told about their money and security, kept until dismissed.

`Notifications.on_event` is subscribed to `Events`, so each notification is written in
the same transaction as its event: a transfer that commits has its "Money sent" and
"Money received", one that rolls back has neither. Every event type has a text of its
own (`TEXTS`); a type without one (added later) still gets a plain notification.

A refused transfer whose reason is the password (`wrong_password`, `locked`) gets no
notification of its own: the `password.failed` and `account.locked` notifications
already tell it, and an attacker hammering a locked account does not flood the inbox.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, func, update
from sqlmodel import Field, Session, SQLModel, col, select

from banking.db import writing
from banking.models import Event
from banking.money import format_rupees

# The refusal reasons of banking.teller.Refusal, as a sentence's end.
REFUSAL_REASONS = {
    "transfer_limit": "the hourly transfer limit was reached",
    "insufficient_funds": "your balance was too low",
    "recipient_unavailable": "the receiver's account is not available",
    "store_unavailable": "the service was briefly unavailable",
}
# Refusals told by the password.failed and account.locked notifications instead.
PASSWORD_REFUSALS = frozenset({"wrong_password", "locked"})
CHANNEL_NAMES = {
    "assistant": "the assistant",
    "chat": "the chat",
    "chat-ws": "the chat",
    "support-chat": "the support chat",
    "voice": "the voice assistant",
    "phone": "the phone",
    "api": "the banking API",
}


class Notification(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    event_id: int = Field(foreign_key="event.id", unique=True, description="what it tells")
    event_type: str  # an events.EventType
    kind: str = Field(description='seeds/000\'s type: "transaction" or "alert"')
    title: str
    message: str
    read: bool = False
    created_at: datetime


@dataclass(frozen=True)
class Text:
    kind: str
    title: str
    message: str


def _amount(payload: dict[str, Any]) -> str:
    amount = payload.get("amount")
    return format_rupees(amount) if isinstance(amount, int) else "money"


def _balance(payload: dict[str, Any]) -> str:
    balance = payload.get("balance_after")
    return f" Your balance is now {format_rupees(balance)}." if isinstance(balance, int) else ""


def _channel(payload: dict[str, Any]) -> str:
    channel = str(payload.get("channel", ""))
    return CHANNEL_NAMES.get(channel, channel or "an unknown channel")


def _sent(payload: dict[str, Any]) -> Text:
    to = payload.get("counterparty", "someone")
    message = f"You sent {_amount(payload)} to {to}.{_balance(payload)}"
    return Text("transaction", "Money sent", message)


def _received(payload: dict[str, Any]) -> Text:
    sender = payload.get("counterparty", "someone")
    message = f"You received {_amount(payload)} from {sender}.{_balance(payload)}"
    return Text("transaction", "Money received", message)


def _refused(payload: dict[str, Any]) -> Text | None:
    reason = payload.get("reason")
    if reason in PASSWORD_REFUSALS:
        return None
    to = payload.get("counterparty", "someone")
    why = REFUSAL_REASONS.get(str(reason), "it was refused")
    message = f"Your transfer of {_amount(payload)} to {to} was not made: {why}."
    return Text("alert", "Transfer not made", message)


def _password_failed(payload: dict[str, Any]) -> Text:
    message = (
        f"A wrong password was given for a transfer through {_channel(payload)}. "
        "If this was not you, change your password."
    )
    return Text("alert", "Wrong password", message)


def _locked(payload: dict[str, Any]) -> Text:
    lock_s = payload.get("lock_s")
    minutes = f" for {max(1, round(lock_s / 60))} minutes" if isinstance(lock_s, int) else ""
    message = (
        f"Too many wrong passwords: your transfers are locked{minutes}, on every channel. "
        "If this was not you, change your password."
    )
    return Text("alert", "Transfers locked", message)


def _fraud(payload: dict[str, Any]) -> Text:
    to = payload.get("counterparty")
    what = f"Your transfer of {_amount(payload)}" + (f" to {to}" if to else "")
    details = payload.get("details") or payload.get("reasons")
    if isinstance(details, list):
        details = "; ".join(str(item) for item in details)
    message = f"{what} looked unusual." + (f" {details}" if details else "")
    return Text("alert", "Unusual transfer detected", message)


TEXTS: dict[str, Callable[[dict[str, Any]], Text | None]] = {
    "transaction.completed": _sent,
    "transaction.received": _received,
    "transaction.failed": _refused,
    "password.failed": _password_failed,
    "account.locked": _locked,
    "fraud.detected": _fraud,
}


def text_for(event_type: str, payload: dict[str, Any]) -> Text | None:
    """The notification an event gives its user; None when it gives none."""
    render = TEXTS.get(event_type)
    if render is None:
        return Text("alert", "Account activity", f"New activity on your account: {event_type}.")
    return render(payload)


class NotificationNotFound(LookupError):
    """No such notification of this user (another user's counts as none)."""


@dataclass(frozen=True)
class Inbox:
    notifications: list[Notification]
    unread_count: int


class Notifications:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @staticmethod
    def on_event(session: Session, event: Event) -> None:
        """The `Events` listener: adds the event's notification in the event's transaction."""
        assert event.id is not None  # Events.add flushed it
        text = text_for(event.type, event.payload)
        if text is None:
            return
        session.add(
            Notification(
                user_id=event.user_id,
                event_id=event.id,
                event_type=event.type,
                kind=text.kind,
                title=text.title,
                message=text.message,
                created_at=event.created_at,
            )
        )

    def inbox(self, user_id: int, limit: int) -> Inbox:
        """The user's `limit` newest notifications and how many of all are unread."""
        with Session(self.engine) as session:
            query = (
                select(Notification)
                .where(Notification.user_id == user_id)
                .order_by(col(Notification.id).desc())
                .limit(limit)
            )
            unread = select(func.count()).where(
                Notification.user_id == user_id, col(Notification.read).is_(False)
            )
            return Inbox(list(session.exec(query).all()), session.exec(unread).one())

    def mark_read(self, user_id: int, notification_id: int) -> None:
        """Raises NotificationNotFound unless the user has this notification."""
        self._change(
            update(Notification)
            .where(col(Notification.id) == notification_id, col(Notification.user_id) == user_id)
            .values(read=True)
        )

    def mark_all_read(self, user_id: int) -> int:
        """Marks every unread notification of the user read; returns how many."""
        with Session(writing(self.engine)) as session, session.begin():
            result = session.exec(
                update(Notification)
                .where(col(Notification.user_id) == user_id, col(Notification.read).is_(False))
                .values(read=True)
            )
            return result.rowcount

    def dismiss(self, user_id: int, notification_id: int) -> None:
        """Deletes it; raises NotificationNotFound unless the user has this notification."""
        self._change(
            delete(Notification).where(
                col(Notification.id) == notification_id, col(Notification.user_id) == user_id
            )
        )

    def _change(self, statement: Any) -> None:
        with Session(writing(self.engine)) as session, session.begin():
            if session.exec(statement).rowcount == 0:
                raise NotificationNotFound("no such notification of this user")
