"""Each user's webhook subscriptions, and the delivery history a user may read."""

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, get_args

from sqlalchemy import Engine, delete, func
from sqlmodel import Session, col, select

from banking.db import writing
from banking.models import User
from banking.webhooks.models import WebhookDelivery, WebhookSubscription

# The events a user may subscribe to (a subset of banking.events.EventType).
WebhookEvent = Literal[
    "transaction.completed", "transaction.failed", "fraud.detected", "password.failed"
]
WEBHOOK_EVENTS: tuple[str, ...] = get_args(WebhookEvent)


class TooManySubscriptions(Exception):
    """The user already has the most subscriptions allowed."""


class UnknownSubscription(LookupError):
    """No subscription with this id belongs to the user (or none exists at all)."""


@dataclass(frozen=True)
class NewSubscription:
    subscription: WebhookSubscription
    secret: str


class Subscriptions:
    def __init__(self, engine: Engine, max_per_user: int) -> None:
        self.engine = engine
        self.max_per_user = max_per_user

    def create(self, user_id: int, url: str, events: Sequence[str]) -> NewSubscription:
        """A new subscription with a new random signing secret (32 bytes, hex)."""
        secret = f"whsec_{secrets.token_hex(32)}"
        subscription = WebhookSubscription(
            id=f"whk_{secrets.token_hex(12)}",
            user_id=user_id,
            url=url,
            events=sorted(set(events)),
            secret=secret,
            created_at=datetime.now(UTC),
        )
        # The write lock (SQLite) / the user's row lock (PostgreSQL) keeps two concurrent
        # requests from both slipping under the limit.
        with Session(writing(self.engine), expire_on_commit=False) as session, session.begin():
            _lock_user(session, user_id)
            count = session.exec(
                select(func.count()).where(WebhookSubscription.user_id == user_id)
            ).one()
            if count >= self.max_per_user:
                raise TooManySubscriptions(self.max_per_user)
            session.add(subscription)
        return NewSubscription(subscription, secret)

    def for_user(self, user_id: int) -> list[WebhookSubscription]:
        with Session(self.engine) as session:
            query = (
                select(WebhookSubscription)
                .where(WebhookSubscription.user_id == user_id)
                .order_by(col(WebhookSubscription.created_at), col(WebhookSubscription.id))
            )
            return list(session.exec(query).all())

    def delete(self, user_id: int, subscription_id: str) -> None:
        """Removes the subscription and its deliveries: nothing more is sent to its URL."""
        with Session(writing(self.engine)) as session, session.begin():
            self._owned(session, user_id, subscription_id)
            session.execute(
                delete(WebhookDelivery).where(
                    col(WebhookDelivery.subscription_id) == subscription_id
                )
            )
            session.execute(
                delete(WebhookSubscription).where(col(WebhookSubscription.id) == subscription_id)
            )

    def deliveries(self, user_id: int, subscription_id: str, limit: int) -> list[WebhookDelivery]:
        """The subscription's `limit` most recent deliveries, newest first."""
        with Session(self.engine) as session:
            self._owned(session, user_id, subscription_id)
            query = (
                select(WebhookDelivery)
                .where(WebhookDelivery.subscription_id == subscription_id)
                .order_by(col(WebhookDelivery.id).desc())
                .limit(limit)
            )
            return list(session.exec(query).all())

    @staticmethod
    def _owned(session: Session, user_id: int, subscription_id: str) -> WebhookSubscription:
        subscription = session.get(WebhookSubscription, subscription_id)
        if subscription is None or subscription.user_id != user_id:
            raise UnknownSubscription(subscription_id)
        return subscription


def _lock_user(session: Session, user_id: int) -> None:
    """Serialises one user's subscription changes (a no-op lock on SQLite, which already
    holds the database write lock)."""
    session.exec(select(User.id).where(User.id == user_id).with_for_update()).first()
