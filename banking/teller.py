"""Making a transfer the user asked for: password, hourly limit, risk, ledger, audit and log.

The stateless API and conversations both end here once receiver, amount and password are
known, so every attempt passes the same checks and leaves the same traces: one audit row
(banking/audit.py) and one `transfer` log line with stage timings, whatever the outcome.
Every transfer is scored for fraud risk (banking/fraud.py) in its own transaction, under
the ledger's lock on the sender's account; a risky one gets its alert there too. The
channels that talk with the user ask `unusual()` first, so that a high-risk transfer is
explained and confirmed.
"""

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from sqlmodel import Session

from banking import (
    AccountNotFound,
    ContactEntry,
    Factor,
    InsufficientFunds,
    Ledger,
    Person,
    TransferAlreadyMade,
    TransferReceipt,
    refusals,
)
from banking.audit import AuditLog, audit_row
from banking.fraud import FraudMonitor
from banking.limits import Limits
from banking.lockout import PasswordGuard, Verdict
from banking.logs import log_event, mask
from banking.store import StoreUnavailable

log = logging.getLogger(__name__)

Refusal = Literal[
    "wrong_password",
    "locked",
    "transfer_limit",
    "insufficient_funds",
    "recipient_unavailable",
    "already_made",
    "store_unavailable",
]


@dataclass
class Outcome:
    receipt: TransferReceipt | None = None
    refusal: Refusal | None = None
    balance: int | None = None  # the sender's balance, when it was too low
    retry_after_s: int | None = None  # when the hourly limit refused it
    risk_score: int | None = None  # banking/fraud.py's score of a transfer that was made


class Teller:
    def __init__(
        self,
        ledger: Ledger,
        guard: PasswordGuard,
        limits: Limits,
        audit: AuditLog,
        fraud: FraudMonitor,
    ) -> None:
        self.ledger = ledger
        self.guard = guard
        self.limits = limits
        self.audit = audit
        self.fraud = fraud

    def unusual(self, person: Person, contact: ContactEntry, amount: int) -> list[str]:
        """Why this transfer looks unusual, when it scores high: it then needs an explicit
        yes. Empty when it does not, or when the balance cannot cover it (it would only be
        refused after the question)."""
        assessment = self.fraud.assess(person.id, contact.user_id, contact.label, amount)
        if assessment.level != "high" or self.ledger.balance(person.id) < amount:
            return []
        return assessment.reasons

    def execute(
        self,
        person: Person,
        contact: ContactEntry,
        amount: int,
        password: str,
        *,
        channel: str,
        transfer_id: str | None = None,
        factor: Factor = "password",
    ) -> Outcome:
        """Check the password (or the phone's PIN), then the hourly limit, then move the money.

        Raises StoreUnavailable (after auditing the attempt) when the password or
        limit counters cannot be kept: then nothing moves.
        """
        timings: dict[str, float] = {}
        started = time.perf_counter()
        try:
            outcome = self._attempt(
                person, contact, amount, password, factor, channel, transfer_id, timings
            )
        except StoreUnavailable:
            outcome = Outcome(refusal="store_unavailable")
            self._trace(person, contact, amount, channel, outcome, transfer_id, timings, started)
            raise
        self._trace(person, contact, amount, channel, outcome, transfer_id, timings, started)
        return outcome

    def verify(self, person: Person, secret: str, factor: Factor, channel: str) -> Verdict:
        """Check a password or PIN under the lockout: the one way any channel checks one.

        A wrong one is counted and leaves a `password.failed` event (and `account.locked`
        when it was one too many). Raises StoreUnavailable when the counters cannot be kept.
        """
        verdict = self.guard.check(person.id, secret, factor)
        if verdict in ("wrong", "locked_now"):
            self._password_failed(person, channel, factor, locked=verdict == "locked_now")
        return verdict

    def refusal_text(self, outcome: Outcome, amount: int, factor: Factor = "password") -> str:
        """What the user is told when the attempt was refused."""
        match outcome.refusal:
            case "wrong_password":
                return refusals.password_refused("wrong", self.guard.settings.lock_s, factor)
            case "locked":
                return refusals.password_refused("locked", self.guard.settings.lock_s, factor)
            case "transfer_limit":
                settings = self.limits.settings
                assert outcome.retry_after_s is not None
                return refusals.transfer_limit(
                    settings.transfers, settings.transfers_window_s, outcome.retry_after_s
                )
            case "insufficient_funds":
                assert outcome.balance is not None
                return refusals.insufficient_balance(outcome.balance, amount)
            case "recipient_unavailable":
                return refusals.RECIPIENT_UNAVAILABLE
            case "already_made":
                return refusals.ALREADY_MADE
        return refusals.STORE_UNAVAILABLE

    def _attempt(
        self,
        person: Person,
        contact: ContactEntry,
        amount: int,
        password: str,
        factor: Factor,
        channel: str,
        transfer_id: str | None,
        timings: dict[str, float],
    ) -> Outcome:
        with _timed(timings, "password_ms"):
            verdict = self.verify(person, password, factor, channel)
        if verdict != "right":
            return Outcome(refusal="wrong_password" if verdict == "wrong" else "locked")
        quota = self.limits.reserve_transfer(person.id)
        if quota.exceeded:
            self.limits.release_transfer(person.id, quota)
            return Outcome(refusal="transfer_limit", retry_after_s=quota.retry_after_s())
        outcome = Outcome()
        try:

            def assess_and_alert(session: Session, made_id: str) -> None:
                """Under the ledger's lock on the sender's account: see docs/security.md."""
                with _timed(timings, "fraud_ms"):
                    risk = self.fraud.assess(
                        person.id, contact.user_id, contact.label, amount, (session, made_id)
                    )
                self.fraud.record(session, person.id, made_id, amount, contact.label, risk)
                outcome.risk_score = risk.score

            with _timed(timings, "ledger_ms"):
                outcome.receipt = self.ledger.transfer(
                    person.id,
                    contact.user_id,
                    amount,
                    receiver_label=contact.label,
                    sender_label=person.first_name,
                    transfer_id=transfer_id,
                    channel=channel,
                    within=assess_and_alert,
                )
        except InsufficientFunds as short:
            outcome = Outcome(refusal="insufficient_funds", balance=short.balance)
        except AccountNotFound:
            outcome = Outcome(refusal="recipient_unavailable")
        except TransferAlreadyMade:
            outcome = Outcome(refusal="already_made")
        finally:  # not made (refused, or the database failed): the reservation goes back
            if outcome.receipt is None:
                self.limits.release_transfer(person.id, quota)
        return outcome

    def _password_failed(
        self, person: Person, channel: str, factor: Factor, *, locked: bool
    ) -> None:
        events = self.ledger.events
        events.emit(person.id, "password.failed", {"channel": channel, "factor": factor})
        if locked:
            lock = {"channel": channel, "lock_s": self.guard.settings.lock_s}
            events.emit(person.id, "account.locked", lock)

    def _trace(
        self,
        person: Person,
        contact: ContactEntry,
        amount: int,
        channel: str,
        outcome: Outcome,
        transfer_id: str | None,
        timings: dict[str, float],
        started: float,
    ) -> None:
        """The audit row of a refused attempt (the ledger writes a completed one's) and the log."""
        made = outcome.receipt is not None
        if not made:
            self.audit.record(
                audit_row(
                    user_id=person.id,
                    channel=channel,
                    amount=amount,
                    receiver_user_id=contact.user_id,
                    receiver=contact.label,
                    outcome="refused",
                    reason=outcome.refusal,
                    transfer_id=transfer_id,
                )
            )
        if not made and outcome.refusal != "already_made":  # a retry of one that was made
            self.ledger.events.emit(
                person.id,
                "transaction.failed",
                {
                    "transfer_id": transfer_id,
                    "amount": amount,
                    "channel": channel,
                    "counterparty": contact.label,
                    "reason": outcome.refusal,
                },
            )
        log_event(
            log,
            "transfer",
            user_id=person.id,
            channel=channel,
            amount_paise=amount,
            receiver=mask(contact.label),
            outcome="completed" if made else "refused",
            reason=outcome.refusal,
            transfer_id=outcome.receipt.transfer_id if outcome.receipt else transfer_id,
            risk_score=outcome.risk_score,
            **timings,
            total_ms=round((time.perf_counter() - started) * 1000, 1),
        )


@contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    """Adds the block's duration in milliseconds to `timings[name]`."""
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = round((time.perf_counter() - started) * 1000, 1)
