"""seeds/002's `GET /api/v1/accounts/{id}`: the caller's account, with its recent
transactions when asked for.

Any other account is 403, whether or not it exists (as on POST .../transactions), so a
token cannot probe which accounts exist; only in demo mode without a token, which may read
any account, is an unknown id 404. Each read counts against the account holder's request
limit.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from banking import rupees_number
from banking.api.deps import (
    AUTH_RESPONSES,
    MAX_LIMIT,
    AccountId,
    Caller,
    StatementsDep,
    UsersDep,
    ZoneDep,
    forbidden,
    rate_limited,
)
from banking.api.errors import not_found
from banking.models import Account
from banking.statements import CURRENCY, category_name, signed_rupees
from banking.users import UnknownUser

ACCOUNT_TRANSACTIONS = 10


def readable_account(account_id: AccountId, caller: Caller, statements: StatementsDep) -> Account:
    """The caller's account (403 for any other); in demo mode without a token, any (404
    when there is none)."""
    found = statements.account(account_id)
    if caller is not None and (found is None or found.user_id != caller):
        raise forbidden("This account is not yours.")
    if found is None or found.id is None:
        raise not_found("No such account.")
    return found


def _holder(account: Account) -> int:
    return account.user_id


# Each read counts against the account holder's request limit.
ReadableAccount = Annotated[Account, rate_limited(readable_account, _holder)]
router = APIRouter(tags=["accounts"], responses=AUTH_RESPONSES)


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


@router.get(
    "/api/v1/accounts/{account_id}",
    response_model=AccountView,
    response_model_exclude_unset=True,  # `transactions` only when asked for
    responses={404: {}},
)
def account(
    found: ReadableAccount,
    statements: StatementsDep,
    users: UsersDep,
    zone: ZoneDep,
    include_transactions: bool = False,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="how many recent transactions")
    ] = ACCOUNT_TRANSACTIONS,
) -> dict[str, Any]:
    """The caller's account. Any other id is 403, whether or not the account exists (as on
    POST .../transactions), so a token cannot probe which accounts exist; only in demo mode
    without a token is an unknown id 404."""
    assert found.id is not None  # readable_account checked it
    try:
        holder_name = users.profile(found.user_id).name
    except UnknownUser as gone:
        raise not_found("No such account.") from gone
    first, last = statements.first_and_last(found.id)
    body: dict[str, Any] = {
        "account_id": found.id,
        "account_type": "savings",
        "holder_name": holder_name,
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
                "amount": signed_rupees(entry),
                "balance_after": rupees_number(entry.balance_after),
                "category": None if entry.category is None else category_name(entry.category),
                "status": "completed",
            }
            for entry in statements.recent(found.id, limit)
        ]
    return body
