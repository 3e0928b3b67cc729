"""POST /api/v1/accounts/{account_id}/transactions: a transfer by API (seeds/002's shape).

The account must be the access token's user's (403 otherwise, also for an account that
does not exist); a token is needed in demo mode too. The receiver is named by
`destination_account` (an account id) or `contact` (an alias in the caller's contacts),
the amount in rupees, and the second factor by `mfa_token`: the user's password
or, with `mfa_method: "pin"`, the telephone PIN (the same lockout counts both).

The transfer itself is the Teller's, as on every channel: `Teller.execute` checks the
password against the lockout every channel shares, then the hourly transfer limit, and
moves the money through the ledger, which writes the audit row (channel "api") and the
events in the transfer's transaction. With an Idempotency-Key the request runs once
(banking/api/deps.py, banking/idempotency.py; the ledger's transfer id is derived from the
key). Only a transfer that was made is kept
under its key: a refused request moved nothing, so a retry with the same key (with the
right password, or once the balance allows) runs again.
"""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, NoReturn

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from banking import (
    ContactEntry,
    Factor,
    InvalidAmount,
    Person,
    refusals,
    rupees_number,
    rupees_to_paise,
)
from banking.api.deps import (
    AUTH_RESPONSES,
    GUARDED_RESPONSES,
    MAX_ID,
    MAX_PASSWORD_CHARS,
    AccountId,
    BankDep,
    IdempotencyKey,
    LimitedUserId,
    forbidden,
    idempotent,
)
from banking.api.errors import error_response
from banking.bank import Bank
from banking.money import PAISE_PER_RUPEE
from banking.store import StoreUnavailable
from banking.teller import Outcome

CHANNEL = "api"
CURRENCY = "INR"
STORE_RETRY_S = 5  # when to retry while the key-value store is down (seeds/002's 503)
NO_USER = 0  # the receiver of a transfer to an account that does not exist

router = APIRouter(prefix="/api/v1", tags=["accounts"], responses=AUTH_RESPONSES)
Receiver = Annotated[int, Field(ge=1, le=MAX_ID)]


class TransferRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transaction_type: Annotated[
        Literal["transfer"], Field(description="Only transfers are supported")
    ] = "transfer"
    amount: Annotated[Decimal, Field(description="Rupees, at most two decimal places")]
    destination_account: Annotated[
        Receiver | None, Field(description="The receiver's account id")
    ] = None
    contact: Annotated[
        str | None,
        StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=100),
        Field(description="Or: the alias of one of your contacts (e.g. ravi)"),
    ] = None
    mfa_method: Annotated[
        Factor, Field(description="What mfa_token is: your password, or your telephone PIN")
    ] = "password"
    mfa_token: Annotated[
        str,
        Field(min_length=1, max_length=MAX_PASSWORD_CHARS, description="Your password or PIN"),
    ]
    scheduled_date: Annotated[
        date | None, Field(description="Not supported: transfers are made at once")
    ] = None

    @model_validator(mode="after")
    def _one_receiver(self) -> "TransferRequest":
        if (self.destination_account is None) == (self.contact is None):
            raise ValueError("name the receiver by destination_account or by contact (one)")
        return self


class TransferResponse(BaseModel):
    transaction_id: str
    status: Literal["completed"]
    transaction_type: Literal["transfer"]
    amount: int | float = Field(description="Rupees: an integer when whole")
    currency: str
    from_account: int
    to_account: int | None
    to_name: str
    balance_after: int | float
    created_at: datetime


class Refused(Exception):
    """A refusal: nothing moved, so the Idempotency-Key is not kept for it."""

    def __init__(self, response: JSONResponse) -> None:
        super().__init__(response.status_code)
        self.response = response


REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Not a transfer this API makes (e.g. scheduled, to yourself)"},
    403: {"description": "Not your account, or the wrong password (mfa_token)"},
    422: {"description": "Invalid body, unknown receiver, bad amount or insufficient funds"},
    423: {"description": "Transfers are locked after too many wrong passwords"},
    429: {"description": "Too many requests or transfers this hour (Retry-After)"},
    503: {"description": "The password or limit counters are unavailable; nothing moved"},
}


@router.post(
    "/accounts/{account_id}/transactions",
    status_code=status.HTTP_201_CREATED,
    response_model=TransferResponse,
    responses={**GUARDED_RESPONSES, **REFUSALS},
)
def create_transaction(
    body: TransferRequest,
    bank: BankDep,
    user_id: LimitedUserId,
    account_id: AccountId,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Send money from your account, confirmed with your password."""
    if bank.directory.account_holder(account_id) != user_id:
        raise forbidden("This account is not yours.")

    def run(transfer_id: str | None) -> JSONResponse:
        return _transfer(bank, user_id, account_id, body, transfer_id)

    payload = {"account_id": account_id, **body.model_dump(mode="json", exclude={"mfa_token"})}
    try:
        return idempotent(bank, idempotency_key, user_id, CHANNEL, payload, run)
    except Refused as refused:
        return refused.response
    except StoreUnavailable:
        return error_response(
            503, "SERVICE_UNAVAILABLE", refusals.STORE_UNAVAILABLE, retry_after=STORE_RETRY_S
        )


def _transfer(
    bank: Bank,
    user_id: int,
    account_id: int,
    body: TransferRequest,
    transfer_id: str | None,
) -> JSONResponse:
    """Checks in the contract's order: receiver, amount, then the teller's password,
    limit and balance (and whether an account named by number exists). Raises Refused
    with the error response."""
    person = bank.directory.person(user_id)
    assert person is not None  # CurrentUserId checked the token's user exists
    if body.scheduled_date is not None:
        _refuse(
            400,
            "SCHEDULING_NOT_SUPPORTED",
            "Scheduled transfers are not supported: leave out scheduled_date to send now.",
            field="scheduled_date",
        )
    receiver = _receiver(bank, person, body)
    amount = _paise(body.amount, bank.max_transfer_paise)
    teller = bank.teller
    outcome = teller.execute(
        person,
        receiver,
        amount,
        body.mfa_token,
        channel=CHANNEL,
        transfer_id=transfer_id,
        factor=body.mfa_method,
    )
    if outcome.receipt is None:
        if outcome.refusal == "recipient_unavailable" and body.destination_account is not None:
            _refuse(
                422,
                "RECIPIENT_NOT_FOUND",
                f"There is no account {body.destination_account}. Nothing was sent.",
                field="destination_account",
            )
        _refuse_outcome(outcome, teller.refusal_text(outcome, amount, body.mfa_method), amount)
    made = TransferResponse(
        transaction_id=outcome.receipt.transfer_id,
        status="completed",
        transaction_type="transfer",
        amount=rupees_number(amount),
        currency=CURRENCY,
        from_account=account_id,
        to_account=bank.directory.account_id(receiver.user_id),
        to_name=receiver.label,
        balance_after=rupees_number(outcome.receipt.sender_balance),
        created_at=datetime.now(UTC).replace(microsecond=0),
    )
    return JSONResponse(made.model_dump(mode="json"), status_code=status.HTTP_201_CREATED)


def _receiver(bank: Bank, person: Person, body: TransferRequest) -> ContactEntry:
    """The receiver as the ledger labels them: by their alias when they are a contact."""
    directory = bank.directory
    contacts = directory.contacts(person.id)
    if body.contact is not None:
        by_alias = {entry.alias: entry for entry in contacts}
        if body.contact not in by_alias:
            _refuse(
                422,
                "RECIPIENT_NOT_FOUND",
                refusals.unknown_recipient(body.contact, contacts),
                field="contact",
                contacts=[entry.alias for entry in contacts],
            )
        return by_alias[body.contact]
    assert body.destination_account is not None  # the model requires one of the two
    holder = directory.account_holder(body.destination_account)
    if holder == person.id:
        _refuse(
            400,
            "SAME_ACCOUNT",
            "That is your own account: send money to someone else's.",
            field="destination_account",
        )
    known = [entry for entry in contacts if holder is not None and entry.user_id == holder]
    if known:
        return known[0]
    # Not a contact: named by its account number, never by its holder's name. An account
    # that does not exist is refused by the teller (no user has id 0), so it is only said
    # after the second factor: a stolen token cannot probe which accounts exist.
    return ContactEntry(f"account {body.destination_account}", holder or NO_USER)


def _paise(amount: Decimal, max_paise: int) -> int:
    """The amount in paise, or Refused. Sizes are compared before converting, so that an
    absurd amount (1e999999999) is refused at once instead of being multiplied out."""
    if amount <= 0:
        _amount_refused(refusals.AMOUNT_NOT_POSITIVE, "not_positive")
    if amount > Decimal(max_paise) / PAISE_PER_RUPEE:
        _amount_refused(refusals.amount_too_large(max_paise), "too_large")
    try:
        paise = rupees_to_paise(amount)
    except InvalidAmount:
        paise = 0
    # Decimal arithmetic rounds to its context (1e-999999999 × 100 underflows to 0, and
    # a 30-digit amount loses digits): keep only an amount that is exactly whole paise.
    if paise <= 0 or Decimal(paise).scaleb(-2) != amount:
        _amount_refused(refusals.AMOUNT_HAS_FRACTION_OF_PAISA, "fraction_of_paisa")
    return paise


def _amount_refused(message: str, reason: str) -> NoReturn:
    _refuse(422, "INVALID_AMOUNT", message, field="amount", reason=reason)


def _refuse_outcome(outcome: Outcome, message: str, amount: int) -> NoReturn:
    """The teller's refusal as an error response (raised as Refused)."""
    match outcome.refusal:
        case "wrong_password":
            _refuse(
                403, "INVALID_SECOND_FACTOR", message, field="mfa_token", reason="wrong_password"
            )
        case "locked":
            _refuse(423, "TRANSFERS_LOCKED", message)
        case "transfer_limit":
            _refuse(429, "TRANSFER_LIMIT_EXCEEDED", message, retry_after=outcome.retry_after_s)
        case "insufficient_funds":
            assert outcome.balance is not None
            _refuse(
                422,
                "INSUFFICIENT_FUNDS",
                message,
                field="amount",
                balance=rupees_number(outcome.balance),
                amount=rupees_number(amount),
            )
        case "recipient_unavailable":
            _refuse(422, "RECIPIENT_NOT_FOUND", message)
        case _:  # already_made: a retry of a transfer made before the server restarted
            _refuse(409, "TRANSFER_ALREADY_MADE", message)


def _refuse(
    status_code: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    reason: str | None = None,
    retry_after: int | None = None,
    **details: Any,
) -> NoReturn:
    """Raise Refused with seeds/002's error object."""
    if field is not None:
        details = {"field": field, "reason": reason or code.lower(), **details}
    extra: dict[str, Any] = {"details": details} if details else {}
    if retry_after is not None:
        extra["retry_after"] = retry_after
    raise Refused(error_response(status_code, code, message, **extra))
