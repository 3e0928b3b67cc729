"""/api/v1/webhooks: a user's webhook subscriptions (seeds/002's event types and payload).

Every route needs the user's access token and acts on that user's subscriptions only:
another user's subscription id is answered 404, as if it did not exist.
"""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response, status
from pydantic import BaseModel, Field, field_validator
from starlette.concurrency import run_in_threadpool

from banking.api.deps import AUTH_RESPONSES, BankDep, CurrentUserId
from banking.api.errors import ApiError, not_found
from banking.webhooks.addresses import MAX_URL_CHARS, UnsafeUrl, check_url
from banking.webhooks.models import WebhookDelivery, WebhookSubscription
from banking.webhooks.outbox import public_event_id
from banking.webhooks.subscriptions import (
    WEBHOOK_EVENTS,
    Subscriptions,
    TooManySubscriptions,
    UnknownSubscription,
    WebhookEvent,
)

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"], responses=AUTH_RESPONSES)
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such subscription of this user"}
}


class SubscriptionRequest(BaseModel):
    url: Annotated[str, Field(min_length=1, max_length=MAX_URL_CHARS)]
    events: Annotated[
        list[WebhookEvent],
        Field(min_length=1, max_length=len(WEBHOOK_EVENTS), description="Event types to send"),
    ]

    @field_validator("url")
    @classmethod
    def _strip(cls, url: str) -> str:
        return url.strip()


class SubscriptionResponse(BaseModel):
    id: str
    url: str
    events: list[str]
    created_at: datetime


class CreatedSubscription(SubscriptionResponse):
    secret: Annotated[
        str, Field(description="Signs every delivery (X-Webhook-Signature); shown only now")
    ]


class SubscriptionList(BaseModel):
    webhooks: list[SubscriptionResponse]


class DeliveryResponse(BaseModel):
    id: int
    event_id: str
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryList(BaseModel):
    deliveries: list[DeliveryResponse]


def _subscriptions(bank: BankDep) -> Subscriptions:
    return bank.webhooks


SubscriptionsDep = Annotated[Subscriptions, Depends(_subscriptions)]


def _shown(subscription: WebhookSubscription) -> SubscriptionResponse:
    return SubscriptionResponse(
        id=subscription.id,
        url=subscription.url,
        events=subscription.events,
        created_at=subscription.created_at,
    )


def _not_found() -> ApiError:
    return not_found("No such webhook subscription.")


@router.post("", status_code=status.HTTP_201_CREATED, responses={409: {}, 422: {}})
async def create_subscription(
    body: SubscriptionRequest,
    bank: BankDep,
    user_id: CurrentUserId,
    subscriptions: SubscriptionsDep,
) -> CreatedSubscription:
    """Sends the chosen events to `url` from now on. The response holds the signing
    secret, which is not shown again."""
    allowed = bank.webhook_settings.allowed_private_hosts
    try:
        await run_in_threadpool(check_url, body.url, allowed)  # resolves the host name
    except UnsafeUrl as unsafe:
        raise ApiError(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "INVALID_REQUEST", str(unsafe)
        ) from unsafe
    try:
        made = await run_in_threadpool(subscriptions.create, user_id, body.url, body.events)
    except TooManySubscriptions as full:
        raise ApiError(
            status.HTTP_409_CONFLICT,
            "TOO_MANY_WEBHOOKS",
            f"A user may have at most {subscriptions.max_per_user} webhook subscriptions.",
        ) from full
    return CreatedSubscription(**_shown(made.subscription).model_dump(), secret=made.secret)


@router.get("")
def list_subscriptions(user_id: CurrentUserId, subscriptions: SubscriptionsDep) -> SubscriptionList:
    """The user's subscriptions, oldest first (without their secrets)."""
    return SubscriptionList(webhooks=[_shown(s) for s in subscriptions.for_user(user_id)])


@router.delete("/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
def delete_subscription(
    subscription_id: Annotated[str, Path(max_length=64)],
    user_id: CurrentUserId,
    subscriptions: SubscriptionsDep,
) -> Response:
    """Stops the subscription; deliveries not yet made are dropped."""
    try:
        subscriptions.delete(user_id, subscription_id)
    except UnknownSubscription as unknown:
        raise _not_found() from unknown
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{subscription_id}/deliveries", responses=NOT_FOUND)
def list_deliveries(
    subscription_id: Annotated[str, Path(max_length=64)],
    user_id: CurrentUserId,
    subscriptions: SubscriptionsDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> DeliveryList:
    """The subscription's latest deliveries, newest first: pending (with the next attempt's
    time), delivered, or failed after the last attempt allowed."""
    try:
        rows = subscriptions.deliveries(user_id, subscription_id, limit)
    except UnknownSubscription as unknown:
        raise _not_found() from unknown
    return DeliveryList(deliveries=[_delivery(row) for row in rows])


def _delivery(row: WebhookDelivery) -> DeliveryResponse:
    assert row.id is not None
    return DeliveryResponse(
        id=row.id,
        event_id=public_event_id(row.event_id),
        event_type=row.event_type,
        status=row.status,
        attempts=row.attempts,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )
