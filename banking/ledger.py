"""The ledger: balances, statements and transfers, each transfer one database transaction."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from banking.audit import audit_row
from banking.db import writing
from banking.events import Events
from banking.models import Account, LedgerEntry
from banking.money import InvalidAmount, format_rupees

# The category of both entries of a transfer between users (banking.statements.CATEGORIES).
TRANSFER = "transfer"


class AccountNotFound(LookupError):
    """No account belongs to the given user."""


class InsufficientFunds(Exception):
    """The sender's balance, re-read under lock, is below the amount."""

    def __init__(self, balance: int, amount: int) -> None:
        super().__init__(f"balance {balance} paise is below {amount} paise")
        self.balance = balance
        self.amount = amount


class TransferAlreadyMade(Exception):
    """A transfer with this id was already committed; it is not made twice."""


@dataclass(frozen=True)
class TransferReceipt:
    transfer_id: str
    amount: int
    sender_balance: int


class Ledger:
    def __init__(self, engine: Engine, events: Events | None = None) -> None:
        self.engine = engine
        self.events = events or Events(engine)

    def balance(self, user_id: int) -> int:
        """The user's balance in paise."""
        with Session(self.engine) as session:
            return self._account(session, user_id).balance

    def history(self, user_id: int, count: int) -> list[LedgerEntry]:
        """The user's `count` most recent entries, newest first."""
        with Session(self.engine) as session:
            account = self._account(session, user_id)
            query = (
                select(LedgerEntry)
                .where(LedgerEntry.account_id == account.id)
                .order_by(col(LedgerEntry.created_at).desc(), col(LedgerEntry.id).desc())
                .limit(count)
            )
            return list(session.exec(query).all())

    def transfer(
        self,
        sender_id: int,
        receiver_id: int,
        amount: int,
        *,
        receiver_label: str,
        sender_label: str,
        transfer_id: str | None = None,
        channel: str = "internal",
        within: Callable[[Session, str], None] | None = None,
    ) -> TransferReceipt:
        """Move `amount` paise, or change nothing.

        Both accounts are locked in id order (FOR UPDATE on PostgreSQL; on SQLite the
        transaction holds the write lock from BEGIN IMMEDIATE), the balance is checked
        under that lock, and both entries are written in the same transaction. A caller
        that may retry (a conversation confirmed twice, two servers racing) passes its own
        `transfer_id`: once a transfer with that id is committed, another raises
        TransferAlreadyMade (checked under the lock; a unique constraint backs it up).
        The transfer's audit row (banking/audit.py, naming `channel`) and its events
        (`transaction.completed` for the sender, `transaction.received` for the receiver)
        are written in the same transaction. So is whatever `within` (called last, with the
        session and the transfer id) adds: the fraud alert of a risky transfer.
        """
        if amount <= 0:
            raise InvalidAmount("amount must be positive")
        if sender_id == receiver_id:
            raise InvalidAmount("sender and receiver are the same")
        transfer_id = transfer_id or str(uuid.uuid4())
        now = datetime.now(UTC).replace(microsecond=0)
        with Session(writing(self.engine), expire_on_commit=False) as session, session.begin():
            query = (
                select(Account)
                .where(col(Account.user_id).in_((sender_id, receiver_id)))
                .order_by(col(Account.id))
                .with_for_update()
            )
            accounts = {account.user_id: account for account in session.exec(query)}
            made = select(LedgerEntry.id).where(LedgerEntry.transfer_id == transfer_id)
            if session.exec(made).first() is not None:
                raise TransferAlreadyMade(transfer_id)
            if sender_id not in accounts or receiver_id not in accounts:
                raise AccountNotFound(f"no account for user {sender_id} or {receiver_id}")
            sender, receiver = accounts[sender_id], accounts[receiver_id]
            assert sender.id is not None and receiver.id is not None  # rows read have ids
            if sender.balance < amount:
                raise InsufficientFunds(sender.balance, amount)
            sender.balance -= amount
            receiver.balance += amount
            shown = format_rupees(amount)
            session.add_all(
                [
                    sender,
                    receiver,
                    LedgerEntry(
                        account_id=sender.id,
                        transfer_id=transfer_id,
                        type="debit",
                        amount=amount,
                        counterparty=receiver_label,
                        description=f"Sent {shown} to {receiver_label}",
                        created_at=now,
                        balance_after=sender.balance,
                        category=TRANSFER,
                    ),
                    LedgerEntry(
                        account_id=receiver.id,
                        transfer_id=transfer_id,
                        type="credit",
                        amount=amount,
                        counterparty=sender_label,
                        description=f"Received {shown} from {sender_label}",
                        created_at=now,
                        balance_after=receiver.balance,
                        category=TRANSFER,
                    ),
                    audit_row(
                        user_id=sender_id,
                        channel=channel,
                        amount=amount,
                        receiver_user_id=receiver_id,
                        receiver=receiver_label,
                        outcome="completed",
                        transfer_id=transfer_id,
                    ),
                ]
            )
            sent = {"transfer_id": transfer_id, "amount": amount, "channel": channel}
            self.events.add(
                session,
                sender_id,
                "transaction.completed",
                {**sent, "counterparty": receiver_label, "balance_after": sender.balance},
            )
            self.events.add(
                session,
                receiver_id,
                "transaction.received",
                {**sent, "counterparty": sender_label, "balance_after": receiver.balance},
            )
            if within is not None:
                within(session, transfer_id)
            sender_balance = sender.balance
        return TransferReceipt(transfer_id, amount, sender_balance)

    @staticmethod
    def _account(session: Session, user_id: int) -> Account:
        account = session.exec(select(Account).where(Account.user_id == user_id)).first()
        if account is None:
            raise AccountNotFound(f"no account for user {user_id}")
        return account
