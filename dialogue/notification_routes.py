"""seeds/000's notification routes: list, mark one read, mark all read, dismiss.

Each needs an access token (in demo mode too) and acts on the token's user only: another
user's notification id is answered 404, as if it did not exist.
"""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.requests import HTTPConnection
from pydantic import BaseModel, Field

from banking.auth_routes import AUTH_RESPONSES, CurrentUserId, acting_for
from banking.hardening import ApiError
from banking.notifications import Notification, NotificationNotFound, Notifications
from dialogue.throttle import spend_request

MAX_LIMIT = 100
MAX_ID = 2**63 - 1  # the largest a database integer column holds

router = APIRouter(prefix="/api/notifications", tags=["notifications"], responses=AUTH_RESPONSES)
NOT_FOUND = {404: {"description": "No such notification of this user"}}
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


def _notifications(connection: HTTPConnection) -> Notifications:
    return connection.app.state.notifications


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
    return ApiError(status.HTTP_404_NOT_FOUND, "NOT_FOUND", "No such notification.")


@router.get("/")
def list_notifications(
    request: Request,
    user_id: CurrentUserId,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
    for_user: Annotated[
        int | None, Query(alias="user_id", description="Optional: must be the token's user")
    ] = None,
) -> NotificationList:
    """The newest notifications first, and how many of all are unread."""
    acting_for(user_id, for_user)
    spend_request(request, user_id)
    inbox = _notifications(request).inbox(user_id, limit)
    return NotificationList(
        notifications=[_view(row) for row in inbox.notifications],
        unread_count=inbox.unread_count,
    )


@router.patch("/read-all")
def read_all(request: Request, user_id: CurrentUserId) -> Success:
    spend_request(request, user_id)
    _notifications(request).mark_all_read(user_id)
    return Success()


@router.patch("/{notification_id}/read", responses=NOT_FOUND)
def read_one(request: Request, user_id: CurrentUserId, notification_id: NotificationId) -> Success:
    spend_request(request, user_id)
    try:
        _notifications(request).mark_read(user_id, notification_id)
    except NotificationNotFound as missing:
        raise _not_found() from missing
    return Success()


@router.delete("/{notification_id}", responses=NOT_FOUND)
def dismiss(request: Request, user_id: CurrentUserId, notification_id: NotificationId) -> Success:
    spend_request(request, user_id)
    try:
        _notifications(request).dismiss(user_id, notification_id)
    except NotificationNotFound as missing:
        raise _not_found() from missing
    return Success()
