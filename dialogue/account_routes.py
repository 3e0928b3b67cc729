"""The money views: seeds/000's `GET /api/transactions/` (paginated, filtered), spending by
category for a period (`GET /api/transactions/spending`), and seeds/002's
`GET /api/v1/accounts/{id}`.

Each needs the user's access token and shows only that user's data: a `user_id` naming
someone else, or an account not the caller's, is 403. In demo mode a request without a token
acts for the `user_id` it names (or may read any account), as the other routes do. Each
counts against the user's request limit.
"""

import math
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.requests import HTTPConnection
from pydantic import BaseModel, BeforeValidator, Field

from banking import AccountNotFound, rupees_number
from banking.auth_routes import AUTH_RESPONSES, Caller, acting_user, forbidden
from banking.hardening import ApiError
from banking.models import LedgerEntry
from banking.statements import (
    CURRENCY,
    Category,
    EntryType,
    Period,
    Statements,
    category_name,
    period_range,
)
from banking.users import UnknownUser
from dialogue.throttle import spend_request

MAX_LIMIT = 100
# Pages beyond this are refused (422): page × limit must stay a database integer.
MAX_PAGE = 1_000_000
MAX_ID = 2**63 - 1
ACCOUNT_TRANSACTIONS = 10

router = APIRouter(tags=["accounts"], responses=AUTH_RESPONSES)


def _statements(connection: HTTPConnection) -> Statements:
    return connection.app.state.statements


def _zone(connection: HTTPConnection) -> ZoneInfo:
    return ZoneInfo(connection.app.state.settings.assistant.timezone)


StatementsDep = Annotated[Statements, Depends(_statements)]
ZoneDep = Annotated[ZoneInfo, Depends(_zone)]
# A category in any case: "Groceries" as shown, or "groceries" as tagged.
CategoryQuery = Annotated[
    Category | None,
    BeforeValidator(lambda value: value.strip().lower() if isinstance(value, str) else value),
    Query(description="only this category, e.g. groceries"),
]
UserIdQuery = Annotated[
    int | None, Query(ge=1, le=MAX_ID, description="Must be the token's user (optional)")
]


class Transaction(BaseModel):
    """seeds/000's transaction, plus the description and the balance after it."""

    id: int
    merchant: str
    category: str | None
    amount: int | float = Field(description="rupees; negative for a debit")
    type: EntryType
    timestamp: str = Field(description="local time with its UTC offset (ISO 8601)")
    tags: list[str]
    description: str
    balance_after: int | float


class TransactionPage(BaseModel):
    transactions: list[Transaction]
    total: int
    page: int
    pages: int


class CategorySpending(BaseModel):
    name: str
    value: int | float


class SpendingView(BaseModel):
    period: Period
    from_: str = Field(alias="from", description="start of the period, local time (ISO 8601)")
    to: str = Field(description="end of the period (excluded)")
    currency: str
    category: str | None
    total: int | float = Field(description="rupees spent (debits) in the period")
    spending_by_category: list[CategorySpending]


class AccountTransaction(BaseModel):
    id: int
    date: str
    description: str
    amount: int | float
    balance_after: int | float
    category: str | None
    status: str


class AccountView(BaseModel):
    """seeds/002's account; `transactions` only with include_transactions=true."""

    account_id: int
    account_type: str
    holder_name: str
    balance: int | float
    available_balance: int | float
    currency: str
    status: str
    opened_date: str | None
    last_activity: str | None
    transactions: list[AccountTransaction] | None = None


def _signed(entry: LedgerEntry) -> int | float:
    return rupees_number(-entry.amount if entry.type == "debit" else entry.amount)


def _no_account() -> ApiError:
    return ApiError(status.HTTP_404_NOT_FOUND, "NOT_FOUND", "No such account.")


@router.get("/api/transactions/", response_model=TransactionPage)
def transactions(
    request: Request,
    caller: Caller,
    statements: StatementsDep,
    zone: ZoneDep,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
    category: CategoryQuery = None,
    type: Annotated[EntryType | None, Query(description="debit or credit")] = None,
    user_id: UserIdQuery = None,
) -> dict[str, Any]:
    """The user's transactions, newest first, `limit` to a page; `pages` counts them all."""
    user = acting_user(caller, user_id)
    spend_request(request, user)
    try:
        found = statements.page(user, page=page, limit=limit, category=category, entry_type=type)
    except AccountNotFound as missing:
        raise _no_account() from missing
    return {
        "transactions": [
            {
                "id": entry.id,
                "merchant": entry.counterparty,
                "category": None if entry.category is None else category_name(entry.category),
                "amount": _signed(entry),
                "type": entry.type,
                "timestamp": entry.created_at.astimezone(zone).isoformat(),
                "tags": [] if entry.category is None else [entry.category],
                "description": entry.description,
                "balance_after": rupees_number(entry.balance_after),
            }
            for entry in found.entries
        ],
        "total": found.total,
        "page": page,
        "pages": math.ceil(found.total / limit),
    }


@router.get("/api/transactions/spending", response_model=SpendingView, response_model_by_alias=True)
def spending(
    request: Request,
    caller: Caller,
    statements: StatementsDep,
    zone: ZoneDep,
    period: Annotated[Period, Query()] = "this_month",
    category: CategoryQuery = None,
    user_id: UserIdQuery = None,
) -> dict[str, Any]:
    """What the user spent (every debit, transfers to people included) in the period, per
    category, largest first. Periods are calendar days, weeks (from Monday), months and
    years in the assistant's time zone."""
    user = acting_user(caller, user_id)
    spend_request(request, user)
    start, end = period_range(period, datetime.now(UTC), zone)
    try:
        return statements.spending(user, start, end, category).as_json(period, category)
    except AccountNotFound as missing:
        raise _no_account() from missing


@router.get(
    "/api/v1/accounts/{account_id}",
    response_model=AccountView,
    response_model_exclude_unset=True,  # `transactions` only when asked for
    responses={404: {}},
)
def account(
    request: Request,
    account_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    caller: Caller,
    statements: StatementsDep,
    zone: ZoneDep,
    include_transactions: bool = False,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="how many recent transactions")
    ] = ACCOUNT_TRANSACTIONS,
) -> dict[str, Any]:
    """The caller's account. Any other id is 403, whether or not the account exists (as on
    POST .../transactions), so a token cannot probe which accounts exist; only in demo mode
    without a token is an unknown id 404."""
    found = statements.account(account_id)
    if caller is not None and (found is None or found.user_id != caller):
        raise forbidden("This account is not yours.")
    if found is None or found.id is None:
        raise _no_account()
    spend_request(request, found.user_id)
    try:
        holder = request.app.state.users.profile(found.user_id).name
    except UnknownUser as gone:
        raise _no_account() from gone
    first, last = statements.first_and_last(found.id)
    body: dict[str, Any] = {
        "account_id": found.id,
        "account_type": "savings",
        "holder_name": holder,
        "balance": rupees_number(found.balance),
        "available_balance": rupees_number(found.balance),  # no holds on money here
        "currency": CURRENCY,
        "status": "active",
        "opened_date": None if first is None else first.astimezone(zone).date().isoformat(),
        "last_activity": None if last is None else last.astimezone(zone).isoformat(),
    }
    if include_transactions:
        body["transactions"] = [
            {
                "id": entry.id,
                "date": entry.created_at.astimezone(zone).isoformat(),
                "description": entry.description,
                "amount": _signed(entry),
                "balance_after": rupees_number(entry.balance_after),
                "category": None if entry.category is None else category_name(entry.category),
                "status": "completed",
            }
            for entry in statements.recent(found.id, limit)
        ]
    return body
