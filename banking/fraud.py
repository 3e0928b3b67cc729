"""Fraud checks: an explained risk score for each transfer, alerts, and the user's reports.

A transfer is scored before its money moves, from the sender's own ledger: how its amount
compares with their usual one (the median of their recent payments), whether they have
ever paid this receiver, whether it is night where they live, and how many transfers they
made in the last few minutes. Each factor that applies adds points and a reason a person
understands ("6 times your usual amount", "your first payment to Mike"); the total (at
most 100) gives the level: low, medium or high. A medium or high transfer gets an alert
row and a `fraud.detected` event, both written in the transfer's own transaction, so a
transfer that was not made leaves no alert.

A user may also report one of their payments as fraud: that opens a case (one per
payment) and marks the payment's alert, if it had one, as reported.
"""

import statistics
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Engine, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from banking.db import writing
from banking.events import Events
from banking.models import Account, FraudAlert, FraudReport, LedgerEntry

Level = Literal["low", "medium", "high"]
FactorName = Literal["unusual_amount", "new_receiver", "night_time", "burst"]
AlertStatus = Literal["pending", "reported"]
ReportReason = Literal[
    "unauthorized_charge", "unauthorized_transfer", "scam", "not_recognised", "other"
]

Points = Annotated[int, Field(ge=0, le=100)]


class FraudSettings(BaseModel):
    """Values come from config.yaml, which documents each key."""

    model_config = ConfigDict(extra="forbid")

    medium_at: Points
    high_at: Points
    recent_payments: Annotated[int, Field(ge=1, le=1000)]
    min_payments_for_usual: Annotated[int, Field(ge=1)]
    min_unusual_rupees: Annotated[int, Field(ge=0)]
    unusual_ratio: Annotated[float, Field(gt=1)]
    very_unusual_ratio: Annotated[float, Field(gt=1)]
    unusual_points: Points
    very_unusual_points: Points
    new_receiver_points: Points
    night_start_hour: Annotated[int, Field(ge=0, le=24)]
    night_end_hour: Annotated[int, Field(ge=0, le=24)]
    night_points: Points
    burst_transfers: Annotated[int, Field(ge=1)]
    burst_window_s: Annotated[int, Field(ge=1)]
    burst_points: Points
    resolution_days: Annotated[int, Field(ge=1)]

    @model_validator(mode="after")
    def _ordered(self) -> "FraudSettings":
        if not self.medium_at <= self.high_at:
            raise ValueError("medium_at must not be above high_at")
        if not self.unusual_ratio <= self.very_unusual_ratio:
            raise ValueError("unusual_ratio must not be above very_unusual_ratio")
        return self


@dataclass(frozen=True)
class Factor:
    name: FactorName
    points: int
    reason: str  # a phrase that follows "it is": "6 times your usual amount"


@dataclass(frozen=True)
class Assessment:
    score: int
    level: Level
    factors: tuple[Factor, ...]

    @property
    def reasons(self) -> list[str]:
        return [factor.reason for factor in self.factors]


@dataclass(frozen=True)
class Habits:
    """What the sender's ledger says about this transfer."""

    recent_payments: list[int]  # paise, newest first
    paid_receiver_before: bool
    transfers_in_window: int  # transfers made within burst_window_s before now
    local_hour: int


def as_sentences(reasons: list[str]) -> str:
    """The reasons as sentences: "6 times your usual amount. Late at night."."""
    return " ".join(f"{reason[0].upper()}{reason[1:]}." for reason in reasons)


def is_night(hour: int, start: int, end: int) -> bool:
    """Whether `hour` is in [start, end), which may wrap past midnight; start == end: never."""
    if start <= end:
        return start <= hour < end
    return hour >= start or hour < end


def ordinal(number: int) -> str:
    if 10 <= number % 100 <= 20:
        return f"{number}th"
    return f"{number}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(number % 10, 'th') }"


def duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return "an hour" if hours == 1 else f"{hours} hours"
    if seconds % 60 == 0:
        minutes = seconds // 60
        return "a minute" if minutes == 1 else f"{minutes} minutes"
    return f"{seconds} seconds"


def score(amount: int, receiver: str, habits: Habits, settings: FraudSettings) -> Assessment:
    """The explained risk of sending `amount` paise to `receiver` (a label: "Mike")."""
    factors: list[Factor] = []
    payments = habits.recent_payments
    if len(payments) >= settings.min_payments_for_usual and amount >= (
        settings.min_unusual_rupees * 100
    ):
        ratio = amount / statistics.median(payments)
        if ratio >= settings.unusual_ratio:
            very = ratio >= settings.very_unusual_ratio
            points = settings.very_unusual_points if very else settings.unusual_points
            reason = f"{int(ratio)} times your usual amount"
            factors.append(Factor("unusual_amount", points, reason))
    if not habits.paid_receiver_before:
        reason = f"your first payment to {receiver}"
        factors.append(Factor("new_receiver", settings.new_receiver_points, reason))
    if is_night(habits.local_hour, settings.night_start_hour, settings.night_end_hour):
        factors.append(Factor("night_time", settings.night_points, "late at night"))
    if habits.transfers_in_window >= settings.burst_transfers:
        which = ordinal(habits.transfers_in_window + 1)
        reason = f"your {which} transfer in {duration(settings.burst_window_s)}"
        factors.append(Factor("burst", settings.burst_points, reason))
    total = min(100, sum(factor.points for factor in factors))
    level: Level = (
        "high" if total >= settings.high_at else "medium" if total >= settings.medium_at else "low"
    )
    return Assessment(total, level, tuple(factors))


class TransactionNotFound(LookupError):
    """No payment of this user has that id."""


class NotAPayment(ValueError):
    """The transaction is money the user received, not money that left the account."""


class AlreadyReported(Exception):
    def __init__(self, case_id: str) -> None:
        super().__init__(f"already reported as case {case_id}")
        self.case_id = case_id


Clock = Callable[[], datetime]
# The two sides of a transfer, built once: building them costs more than the query.
# (SQLModel declares no `__table__` to a type checker: the Table is read from the metadata.)
_DEBIT = LedgerEntry.metadata.tables["ledgerentry"].alias("debit")
_CREDIT = LedgerEntry.metadata.tables["ledgerentry"].alias("credit")


def _utc(moment: datetime) -> datetime:
    """Database datetimes come back without a zone; they were written in UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class FraudMonitor:
    def __init__(
        self,
        engine: Engine,
        events: Events,
        settings: FraudSettings,
        zone: ZoneInfo,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.events = events
        self.settings = settings
        self.zone = zone
        self.clock = clock

    def assess(
        self,
        user_id: int,
        receiver_id: int,
        receiver: str,
        amount: int,
        within: tuple[Session, str] | None = None,
    ) -> Assessment:
        """Score a transfer of `amount` paise to user `receiver_id`, shown as `receiver`.

        `within`: the session of the transfer's own transaction, with the ledger's lock on
        the sender's account, and its transfer id (whose entries are not history yet). So
        the transfers racing it have all committed or are waiting: each sees the others
        that came first, and a burst cannot dodge its points by being sent all at once.
        """
        if within is None:
            with Session(self.engine) as session:
                habits = self._habits(session, user_id, receiver_id, receiver, None)
        else:
            habits = self._habits(within[0], user_id, receiver_id, receiver, within[1])
        return score(amount, receiver, habits, self.settings)

    def record(
        self,
        session: Session,
        user_id: int,
        transfer_id: str,
        amount: int,
        receiver: str,
        assessment: Assessment,
    ) -> FraudAlert | None:
        """In the transfer's transaction: the alert and `fraud.detected`, unless it is low."""
        if assessment.level == "low":
            return None
        alert = FraudAlert(
            id=str(uuid.uuid4()),
            created_at=self.clock(),
            user_id=user_id,
            transfer_id=transfer_id,
            amount=amount,
            counterparty=receiver,
            score=assessment.score,
            level=assessment.level,
            reasons=assessment.reasons,
            status="pending",
        )
        session.add(alert)
        payload: dict[str, Any] = {
            "alert_id": alert.id,
            "transfer_id": transfer_id,
            "amount": amount,
            "counterparty": receiver,
            "risk_score": assessment.score,
            "level": assessment.level,
            "reasons": assessment.reasons,
        }
        self.events.add(session, user_id, "fraud.detected", payload)
        return alert

    def alerts(self, user_id: int) -> list[FraudAlert]:
        """The user's alerts, newest first."""
        with Session(self.engine) as session:
            query = (
                select(FraudAlert)
                .where(FraudAlert.user_id == user_id)
                .order_by(col(FraudAlert.created_at).desc(), col(FraudAlert.id))
            )
            return list(session.exec(query).all())

    def report(
        self, user_id: int, transaction_id: str, reason: ReportReason, description: str
    ) -> FraudReport:
        """Open a case for one of the user's payments: its ledger entry id or transfer id.

        Raises TransactionNotFound (also for another user's transaction), NotAPayment for
        money received, AlreadyReported for a payment with a case already.
        """
        now = self.clock()
        entry_id: int | None = None
        with Session(writing(self.engine), expire_on_commit=False) as session:
            try:
                with session.begin():
                    entry = self._entry(session, user_id, transaction_id)
                    entry_id = entry.id
                    assert entry_id is not None
                    existing = session.exec(
                        select(FraudReport).where(FraudReport.entry_id == entry_id)
                    ).first()
                    if existing is not None:
                        raise AlreadyReported(existing.id)
                    case = FraudReport(
                        id=str(uuid.uuid4()),
                        reported_at=now,
                        user_id=user_id,
                        entry_id=entry_id,
                        transfer_id=entry.transfer_id,
                        amount=entry.amount,
                        reason=reason,
                        description=description,
                        status="open",
                        estimated_resolution=now + timedelta(days=self.settings.resolution_days),
                    )
                    session.add(case)
                    if entry.transfer_id is not None:
                        self._mark_reported(session, user_id, entry.transfer_id)
            except IntegrityError as race:  # the same payment reported twice at once
                with Session(self.engine) as again:
                    other = again.exec(
                        select(FraudReport).where(FraudReport.entry_id == entry_id)
                    ).one()
                raise AlreadyReported(other.id) from race
        return case

    @staticmethod
    def _mark_reported(session: Session, user_id: int, transfer_id: str) -> None:
        alerts = select(FraudAlert).where(
            FraudAlert.transfer_id == transfer_id, FraudAlert.user_id == user_id
        )
        for alert in session.exec(alerts):
            alert.status = "reported"
            session.add(alert)

    @staticmethod
    def _entry(session: Session, user_id: int, transaction_id: str) -> LedgerEntry:
        account = session.exec(select(Account).where(Account.user_id == user_id)).first()
        if account is None:
            raise TransactionNotFound(transaction_id)
        query = select(LedgerEntry).where(LedgerEntry.account_id == account.id)
        if transaction_id.isascii() and transaction_id.isdigit():
            if int(transaction_id) > 2**63 - 1:
                raise TransactionNotFound(transaction_id)
            query = query.where(LedgerEntry.id == int(transaction_id))
        else:
            query = query.where(LedgerEntry.transfer_id == transaction_id)
        entry = session.exec(query).first()
        if entry is None:
            raise TransactionNotFound(transaction_id)
        if entry.type != "debit":
            raise NotAPayment(transaction_id)
        return entry

    def _habits(
        self,
        session: Session,
        user_id: int,
        receiver_id: int,
        receiver: str,
        excluding: str | None,
    ) -> Habits:
        """The sender's habits from the ledger, leaving out transfer `excluding`."""
        now = self.clock()
        accounts = {
            account.user_id: account.id
            for account in session.exec(
                select(Account).where(col(Account.user_id).in_((user_id, receiver_id)))
            )
        }
        query = select(
            LedgerEntry.amount,
            LedgerEntry.counterparty,
            LedgerEntry.transfer_id,
            LedgerEntry.created_at,
        ).where(LedgerEntry.account_id == accounts.get(user_id), LedgerEntry.type == "debit")
        if excluding is not None:
            query = query.where(
                or_(
                    col(LedgerEntry.transfer_id).is_(None),
                    col(LedgerEntry.transfer_id) != excluding,
                )
            )
        payments = session.exec(
            query.order_by(col(LedgerEntry.created_at).desc(), col(LedgerEntry.id).desc()).limit(
                self.settings.recent_payments
            )
        ).all()
        paid = any(name.lower() == receiver.lower() for _, name, _, _ in payments)
        if not paid:
            paid = self._paid_account(
                session, accounts.get(user_id), accounts.get(receiver_id), excluding
            )
        since = now - timedelta(seconds=self.settings.burst_window_s)
        in_window = sum(
            1
            for _, _, transfer_id, created_at in payments
            if transfer_id is not None and _utc(created_at) > since
        )
        return Habits(
            recent_payments=[amount for amount, _, _, _ in payments],
            paid_receiver_before=paid,
            transfers_in_window=in_window,
            local_hour=now.astimezone(self.zone).hour,
        )

    @staticmethod
    def _paid_account(
        session: Session, sender: int | None, receiver: int | None, excluding: str | None
    ) -> bool:
        """Whether any transfer (but `excluding`) ever went from one account to the other
        (under any name)."""
        if sender is None or receiver is None:
            return False
        debit, credit = _DEBIT, _CREDIT
        query = (
            select(debit.c.id)
            .join(credit, debit.c.transfer_id == credit.c.transfer_id)
            .where(
                debit.c.account_id == sender,
                debit.c.type == "debit",
                credit.c.account_id == receiver,
                credit.c.type == "credit",
            )
            .limit(1)
        )
        if excluding is not None:
            query = query.where(debit.c.transfer_id != excluding)
        return session.exec(query).first() is not None
