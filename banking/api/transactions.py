"""The money views of seeds/000: `GET /api/transactions/` (paginated, filtered) and spending
by category for a period (`GET /api/transactions/spending`).

Each needs the user's access token and shows only that user's data: a `user_id` naming
someone else is 403. In demo mode a request without a token acts for the `user_id` it
names, as the other routes do. Each counts against the user's request limit.
"""

import math
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, BeforeValidator, Field

from banking import AccountNotFound, rupees_number
from banking.api.deps import (
    AUTH_RESPONSES,
    MAX_ID,
    MAX_LIMIT,
    Caller,
    StatementsDep,
    ZoneDep,
    acting_user,
    rate_limited,
)
from banking.api.errors import ApiError, not_found
from banking.statements import (
    Category,
    EntryType,
    Period,
    category_name,
    period_range,
    signed_rupees,
)

# Pages beyond this are refused (422): page × limit must stay a database integer.
MAX_PAGE = 1_000_000
# A category in any case: "Groceries" as shown, or "groceries" as tagged.
CategoryQuery = Annotated[
    Category | None,
    BeforeValidator(lambda value: value.strip().lower() if isinstance(value, str) else value),
    Query(description="only this category, e.g. groceries"),
]


def reader(
    caller: Caller,
    user_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="Must be the token's user (optional)")
    ] = None,
) -> int:
    """Whose transactions: the token's user, whom a `user_id` must name."""
    return acting_user(caller, user_id)


Reader = Annotated[int, rate_limited(reader)]  # counted against the reader's request limit
router = APIRouter(tags=["accounts"], responses=AUTH_RESPONSES)


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


def _no_account() -> ApiError:
    return not_found("No such account.")


@router.get("/api/transactions/", response_model=TransactionPage)
def transactions(
    user: Reader,
    statements: StatementsDep,
    zone: ZoneDep,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
    category: CategoryQuery = None,
    type: Annotated[EntryType | None, Query(description="debit or credit")] = None,
) -> dict[str, Any]:
    """The user's transactions, newest first, `limit` to a page; `pages` counts them all."""
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
                "amount": signed_rupees(entry),
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
    user: Reader,
    statements: StatementsDep,
    zone: ZoneDep,
    period: Annotated[Period, Query()] = "this_month",
    category: CategoryQuery = None,
) -> dict[str, Any]:
    """What the user spent (every debit, transfers to people included) in the period, per
    category, largest first. Periods are calendar days, weeks (from Monday), months and
    years in the assistant's time zone."""
    start, end = period_range(period, datetime.now(UTC), zone)
    try:
        return statements.spending(user, start, end, category).as_json(period, category)
    except AccountNotFound as missing:
        raise _no_account() from missing
