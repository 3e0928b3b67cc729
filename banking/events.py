"""Domain events: what happened to a user's money or security, kept in the database.

An event is written in the same transaction as the change it reports (the ledger adds
`transaction.completed` and `transaction.received` inside the transfer's transaction), so
a committed transfer always has its events and a rolled-back one has none. Consumers that
must not miss an event (notifications, the webhook outbox) subscribe a listener, which is
called inside that same transaction and writes its own rows there.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from banking.db import writing
from banking.models import Event

EventType = Literal[
    "transaction.completed",  # the user sent money
    "transaction.received",  # the user received money
    "transaction.failed",  # a transfer the user asked for was refused
    "password.failed",  # a wrong password or PIN was given for a transfer
    "account.locked",  # too many wrong passwords: transfers are locked for a while
    "fraud.detected",  # a transfer scored as risky
]


# Called inside the transaction that writes the event; it may add rows to that session.
Listener = Callable[[Session, Event], None]


class Events:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def add(
        self, session: Session, user_id: int, type_: EventType, payload: dict[str, Any]
    ) -> Event:
        """Write the event in the caller's transaction and tell every listener."""
        event = Event(created_at=datetime.now(UTC), user_id=user_id, type=type_, payload=payload)
        session.add(event)
        session.flush()  # gives the event its id before listeners refer to it
        for listener in self._listeners:
            listener(session, event)
        return event

    def emit(self, user_id: int, type_: EventType, payload: dict[str, Any]) -> Event:
        """Write the event in a transaction of its own."""
        with Session(writing(self.engine), expire_on_commit=False) as session, session.begin():
            return self.add(session, user_id, type_, payload)

    def for_user(self, user_id: int, type_: EventType | None = None) -> list[Event]:
        """The user's events, oldest first."""
        with Session(self.engine) as session:
            query = select(Event).where(Event.user_id == user_id).order_by(col(Event.id))
            if type_ is not None:
                query = query.where(Event.type == type_)
            return list(session.exec(query).all())
