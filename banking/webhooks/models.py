"""The webhook tables: each user's subscriptions, and the outbox of deliveries to make."""

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, Column, Text
from sqlmodel import Field, SQLModel

DELIVERY_STATUSES = ("pending", "delivered", "failed")


class WebhookSubscription(SQLModel, table=True):
    __tablename__ = "webhook_subscription"

    id: str = Field(primary_key=True, description="whk_ and 24 hex digits")
    user_id: int = Field(foreign_key="user.id", index=True)
    url: str
    events: list[str] = Field(sa_column=Column(JSON, nullable=False))
    # The HMAC key deliveries are signed with. Kept as it is (not hashed): signing needs it.
    secret: str
    created_at: datetime


class WebhookDelivery(SQLModel, table=True):
    """One event to send to one subscription: a row of the outbox.

    Written in the event's own transaction. The dispatcher claims a due row by setting
    `lease_until` and `claim_token`; only the holder of that token records the outcome.
    """

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        CheckConstraint(
            f"status IN {DELIVERY_STATUSES!r}".replace('"', "'"), name="delivery_status"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: str = Field(foreign_key="webhook_subscription.id", index=True)
    event_id: int = Field(description="the domain event's id (banking.models.Event)")
    event_type: str
    # The exact JSON body sent on every attempt, so every attempt carries the same signature.
    body: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", index=True)
    attempts: int = 0
    next_attempt_at: datetime = Field(index=True)
    lease_until: datetime | None = None
    claim_token: str | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    created_at: datetime
    delivered_at: datetime | None = None
