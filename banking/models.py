"""The banking tables. Money columns hold integer paise."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Column, UniqueConstraint
from sqlmodel import Field, SQLModel


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str
    email: str = Field(unique=True, index=True)
    password_hash: str


class Account(SQLModel, table=True):
    __table_args__ = (CheckConstraint("balance >= 0", name="balance_not_negative"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", unique=True, index=True)
    balance: int = Field(default=0, description="paise")


class Contact(SQLModel, table=True):
    """A spoken alias in one user's address book that names another user."""

    __table_args__ = (UniqueConstraint("owner_id", "alias"),)

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="user.id", index=True)
    alias: str = Field(description="lower case, as spoken")
    contact_user_id: int = Field(foreign_key="user.id")


class LedgerEntry(SQLModel, table=True):
    """One side of a money movement. Opening-statement entries have no transfer_id."""

    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("type IN ('debit', 'credit')", name="entry_type"),
        # One debit and one credit per transfer id: a transfer retried with its id is refused.
        UniqueConstraint("transfer_id", "type", name="one_side_per_transfer"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    transfer_id: str | None = Field(default=None, index=True)
    type: str
    amount: int = Field(description="paise")
    counterparty: str
    description: str
    created_at: datetime
    balance_after: int = Field(description="paise")
    # One of banking.statements.CATEGORIES; None in databases made before categories.
    category: str | None = None


class StaffRole(SQLModel, table=True):
    """A user who works for the bank: "agent" (support tickets) or "admin" (also the NLU
    models). Everyone without a row is a customer. Granted with `server.py --grant-role`."""

    __table_args__ = (CheckConstraint("role IN ('agent', 'admin')", name="staff_role"),)

    user_id: int = Field(foreign_key="user.id", primary_key=True)
    role: str


class RevokedSession(SQLModel, table=True):
    """A login ended by logout: its access and refresh tokens (which share the session id)
    are refused until `expires_at` (Unix seconds), when they would have expired anyway."""

    session_id: str = Field(primary_key=True)
    expires_at: int = Field(index=True)


class Event(SQLModel, table=True):
    """A domain event (banking/events.py): written in the transaction of what it reports."""

    __tablename__ = "event"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime
    user_id: int = Field(index=True, description="whose event it is")
    type: str = Field(index=True)  # an events.EventType
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


class FraudAlert(SQLModel, table=True):
    """A transfer that scored medium or high (banking/fraud.py), written in its transaction."""

    __tablename__ = "fraud_alert"

    id: str = Field(primary_key=True)  # a UUID: seeds/000's fraud_log_id
    created_at: datetime
    user_id: int = Field(index=True, description="the sender")
    transfer_id: str = Field(index=True)
    amount: int = Field(description="paise")
    counterparty: str
    score: int
    level: str  # a Level
    reasons: list[str] = Field(sa_column=Column(JSON, nullable=False))
    status: str  # an AlertStatus


class FraudReport(SQLModel, table=True):
    """A payment the user says was fraud: seeds/002's case. One per ledger entry."""

    __tablename__ = "fraud_report"

    id: str = Field(primary_key=True)  # a UUID: the case id
    reported_at: datetime
    user_id: int = Field(index=True)
    entry_id: int = Field(foreign_key="ledgerentry.id", unique=True)
    transfer_id: str | None = None
    amount: int = Field(description="paise")
    reason: str  # a ReportReason
    description: str
    status: str  # "open"
    estimated_resolution: datetime


class PhoneNumber(SQLModel, table=True):
    """A telephone number (E.164, "+15550100001") registered on a user: a call from it is
    that user's (voice/phone.py). A user may have several; a number belongs to one user."""

    __tablename__ = "phone_number"

    number: str = Field(primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)


class PhonePin(SQLModel, table=True):
    """The bcrypt hash of a user's telephone PIN, typed on the keypad to confirm a transfer
    on the phone as the password confirms one elsewhere."""

    __tablename__ = "phone_pin"

    user_id: int = Field(foreign_key="user.id", primary_key=True)
    pin_hash: str
