"""seeds/000's notification routes: list, mark one read, mark all read, dismiss.

Each needs an access token (in demo mode too) and acts on the token's user only: another
user's notification id is answered 404, as if it did not exist.
"""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from banking.api.deps import (
    AUTH_RESPONSES,
    MAX_ID,
    MAX_LIMIT,
    BankDep,
    CurrentUserId,
    LimitedUserId,
    acting_for,
    rate_limited,
)
from banking.api.errors import ApiError, not_found
from banking.notifications import Notification, NotificationNotFound, Notifications


def inbox_reader(
    user_id: CurrentUserId,
    for_user: Annotated[
        int | None, Query(alias="user_id", description="Optional: must be the token's user")
    ] = None,
) -> int:
    """The token's user, whom a `user_id` must name."""
    acting_for(user_id, for_user)
    return user_id


router = APIRouter(prefix="/api/notifications", tags=["notifications"], responses=AUTH_RESPONSES)
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such notification of this user"}
}
NotificationId = Annotated[int, Path(ge=1, le=MAX_ID)]


class NotificationView(BaseModel):
    id: int
    title: str
    message: str
    type: str = Field(description='"transaction" (money in or out) or "alert"')
    event: str = Field(description="The event it tells, e.g. transaction.completed")
    read: bool
    created_at: datetime


class NotificationList(BaseModel):
    notifications: list[NotificationView]
    unread_count: int


class Success(BaseModel):
    success: bool = True


def _notifications(bank: BankDep) -> Notifications:
    return bank.notifications


NotificationsDep = Annotated[Notifications, Depends(_notifications)]


def _view(row: Notification) -> NotificationView:
    assert row.id is not None
    return NotificationView(
        id=row.id,
        title=row.title,
        message=row.message,
        type=row.kind,
        event=row.event_type,
        read=row.read,
        created_at=row.created_at,
    )


def _not_found() -> ApiError:
    return not_found("No such notification.")


@router.get("/")
def list_notifications(
    user_id: Annotated[int, rate_limited(inbox_reader)],
    notifications: NotificationsDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
) -> NotificationList:
    """The newest notifications first, and how many of all are unread."""
    inbox = notifications.inbox(user_id, limit)
    return NotificationList(
        notifications=[_view(row) for row in inbox.notifications],
        unread_count=inbox.unread_count,
    )


@router.patch("/read-all")
def read_all(user_id: LimitedUserId, notifications: NotificationsDep) -> Success:
    notifications.mark_all_read(user_id)
    return Success()


@router.patch("/{notification_id}/read", responses=NOT_FOUND)
def read_one(
    user_id: LimitedUserId, notification_id: NotificationId, notifications: NotificationsDep
) -> Success:
    try:
        notifications.mark_read(user_id, notification_id)
    except NotificationNotFound as missing:
        raise _not_found() from missing
    return Success()


@router.delete("/{notification_id}", responses=NOT_FOUND)
def dismiss(
    user_id: LimitedUserId, notification_id: NotificationId, notifications: NotificationsDep
) -> Success:
    try:
        notifications.dismiss(user_id, notification_id)
    except NotificationNotFound as missing:
        raise _not_found() from missing
    return Success()
