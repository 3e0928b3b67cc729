"""Fraud scores: factors, points and reasons for crafted histories; alerts, events, reports."""

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from banking import InsufficientFunds, Ledger, make_engine, seed_demo_data
from banking.fraud import (
    AlreadyReported,
    Assessment,
    FraudMonitor,
    Habits,
    NotAPayment,
    TransactionNotFound,
    as_sentences,
    is_night,
    score,
)
from banking.models import Account, FraudAlert, LedgerEntry
from tests.conftest import settings_for

DEMO_DATA = Path(__file__).resolve().parents[2] / "data" / "demo_users.yaml"
KOLKATA = ZoneInfo("Asia/Kolkata")
SETTINGS = settings_for("sqlite://").fraud  # config.yaml's fraud section
NOON = datetime(2026, 3, 10, 12, 0, tzinfo=KOLKATA)


def habits(
    payments: list[int] | None = None,
    *,
    paid_before: bool = True,
    in_window: int = 0,
    hour: int = 12,
) -> Habits:
    return Habits(
        recent_payments=[150_000, 200_000, 100_000] if payments is None else payments,
        paid_receiver_before=paid_before,
        transfers_in_window=in_window,
        local_hour=hour,
    )


def factors(assessment: Assessment) -> list[tuple[str, int]]:
    return [(factor.name, factor.points) for factor in assessment.factors]


def test_an_ordinary_transfer_scores_zero() -> None:
    assessment = score(100_000, "Ravi", habits(), SETTINGS)
    assert (assessment.score, assessment.level, assessment.reasons) == (0, "low", [])


def test_eight_times_the_usual_amount_to_someone_new_is_high() -> None:
    # usual = median(1500, 2000, 1000) rupees = 1500; 12000 is 8 times that
    assessment = score(1_200_000, "Mike", habits(paid_before=False), SETTINGS)
    assert factors(assessment) == [("unusual_amount", 50), ("new_receiver", 20)]
    assert assessment.reasons == ["8 times your usual amount", "your first payment to Mike"]
    assert (assessment.score, assessment.level) == (70, "high")


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        (449_999, []),  # just under 3 times
        (450_000, [("unusual_amount", 30)]),  # 3 times
        (899_999, [("unusual_amount", 30)]),
        (900_000, [("unusual_amount", 50)]),  # 6 times
    ],
)
def test_the_amount_counts_from_three_and_more_from_six_times_the_usual(
    amount: int, expected: list[tuple[str, int]]
) -> None:
    assert factors(score(amount, "Ravi", habits(), SETTINGS)) == expected


def test_the_usual_amount_needs_enough_payments_and_a_sizeable_amount() -> None:
    assert score(1_000_000, "Ravi", habits([100_000]), SETTINGS).factors == ()
    # ₹900 is 9 times a usual ₹100, but below min_unusual_rupees (1000): nothing unusual
    small = score(90_000, "Ravi", habits([10_000, 10_000]), SETTINGS)
    assert small.factors == ()
    assert factors(score(100_000, "Ravi", habits([10_000, 10_000]), SETTINGS)) == [
        ("unusual_amount", 50)
    ]


def test_night_wraps_past_midnight() -> None:
    assert [hour for hour in range(24) if is_night(hour, 23, 6)] == [0, 1, 2, 3, 4, 5, 23]
    assert [hour for hour in range(24) if is_night(hour, 1, 4)] == [1, 2, 3]
    assert not any(is_night(hour, 5, 5) for hour in range(24))
    assert all(is_night(hour, 0, 24) for hour in range(24))
    late = score(100_000, "Ravi", habits(hour=2), SETTINGS)
    assert (late.reasons, late.score, late.level) == (["late at night"], 15, "low")


def test_a_burst_names_which_transfer_this_is() -> None:
    burst = score(100_000, "Ravi", habits(in_window=3), SETTINGS)
    assert burst.reasons == ["your 4th transfer in 10 minutes"]
    assert score(100_000, "Ravi", habits(in_window=2), SETTINGS).factors == ()
    eleventh = score(100_000, "Ravi", habits(in_window=10), SETTINGS)
    assert eleventh.reasons == ["your 11th transfer in 10 minutes"]


def test_without_an_unusual_amount_a_transfer_is_never_high() -> None:
    everything_else = habits(paid_before=False, in_window=5, hour=1)
    assessment = score(100_000, "Mike", everything_else, SETTINGS)
    assert (assessment.score, assessment.level) == (55, "medium")
    assert as_sentences(assessment.reasons) == (
        "Your first payment to Mike. Late at night. Your 6th transfer in 10 minutes."
    )


def test_the_score_is_at_most_100() -> None:
    all_of_it = score(5_000_000, "Mike", habits(paid_before=False, in_window=9, hour=3), SETTINGS)
    assert (all_of_it.score, all_of_it.level) == (100, "high")


# The monitor reads the sender's own ledger: real databases, crafted histories.


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def ledger(database_url: str) -> Iterator[Ledger]:
    engine = make_engine(database_url)
    seed_demo_data(engine, DEMO_DATA)
    yield Ledger(engine)
    engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock(NOON.astimezone(UTC))


@pytest.fixture
def monitor(ledger: Ledger, clock: Clock) -> FraudMonitor:
    return FraudMonitor(ledger.engine, ledger.events, SETTINGS, KOLKATA, clock)


def pay(ledger: Ledger, sender: int, receiver: int, rupees: int, label: str) -> str:
    return ledger.transfer(
        sender, receiver, rupees * 100, receiver_label=label, sender_label="Sender"
    ).transfer_id


def test_the_demo_users_usual_amount_comes_from_their_statement(monitor: FraudMonitor) -> None:
    """User 1 paid ₹2000 for groceries and ₹1000 to Ravi: the usual amount is ₹1500."""
    mike = monitor.assess(1, 5, "Mike", 900_000)
    assert mike.reasons == ["6 times your usual amount", "your first payment to Mike"]
    assert mike.level == "high"
    ravi = monitor.assess(1, 3, "Ravi", 900_000)  # paid before, on the statement
    assert (ravi.reasons, ravi.level) == (["6 times your usual amount"], "medium")
    assert monitor.assess(1, 3, "Ravi", 50_000).level == "low"


def test_a_receiver_paid_under_another_name_is_not_new(
    ledger: Ledger, monitor: FraudMonitor
) -> None:
    """User 1 calls user 5 both john and mike."""
    pay(ledger, 1, 5, 100, "John")
    assert [f.name for f in monitor.assess(1, 5, "Mike", 10_000).factors] == []
    assert [f.name for f in monitor.assess(1, 2, "Jane", 10_000).factors] == ["new_receiver"]


def test_a_burst_counts_transfers_within_the_window(ledger: Ledger, clock: Clock) -> None:
    # The ledger stamps transfers with the real time, so the clock is real too, and this
    # monitor has no night hours: at night in Kolkata the burst would come with "late at
    # night".
    no_night = SETTINGS.model_copy(update={"night_start_hour": 0, "night_end_hour": 0})
    monitor = FraudMonitor(ledger.engine, ledger.events, no_night, KOLKATA, clock)
    clock.now = datetime.now(UTC)
    for _ in range(3):
        pay(ledger, 2, 3, 100, "Ravi")
    assert monitor.assess(2, 3, "Ravi", 10_000).reasons == ["your 4th transfer in 10 minutes"]
    clock.now += timedelta(seconds=SETTINGS.burst_window_s + 1)
    assert monitor.assess(2, 3, "Ravi", 10_000).reasons == []


def test_night_is_local_time(monitor: FraudMonitor, clock: Clock) -> None:
    clock.now = datetime(2026, 3, 10, 23, 30, tzinfo=KOLKATA).astimezone(UTC)  # 18:00 UTC
    assert "late at night" in monitor.assess(1, 3, "Ravi", 10_000).reasons
    clock.now = datetime(2026, 3, 10, 6, 0, tzinfo=KOLKATA).astimezone(UTC)  # 00:30 UTC
    assert "late at night" not in monitor.assess(1, 3, "Ravi", 10_000).reasons


def test_a_risky_transfer_has_its_alert_and_event_in_its_transaction(
    ledger: Ledger, monitor: FraudMonitor
) -> None:
    risk = monitor.assess(1, 5, "Mike", 900_000)

    def alert(session: Session, transfer_id: str) -> None:
        monitor.record(session, 1, transfer_id, 900_000, "Mike", risk)

    receipt = ledger.transfer(
        1, 5, 900_000, receiver_label="Mike", sender_label="John", within=alert
    )
    [made] = monitor.alerts(1)
    assert (made.transfer_id, made.score, made.level, made.status) == (
        receipt.transfer_id,
        70,
        "high",
        "pending",
    )
    assert made.reasons == ["6 times your usual amount", "your first payment to Mike"]
    [event] = ledger.events.for_user(1, "fraud.detected")
    assert event.payload == {
        "alert_id": made.id,
        "transfer_id": receipt.transfer_id,
        "amount": 900_000,
        "counterparty": "Mike",
        "risk_score": 70,
        "level": "high",
        "reasons": made.reasons,
    }
    assert monitor.alerts(5) == []


def test_a_transfer_not_made_leaves_no_alert(ledger: Ledger, monitor: FraudMonitor) -> None:
    risk = monitor.assess(1, 5, "Mike", 5_000_000)
    assert risk.level == "high"
    with pytest.raises(InsufficientFunds):
        ledger.transfer(
            1,
            5,
            5_000_000,
            receiver_label="Mike",
            sender_label="John",
            within=lambda session, made: monitor.record(session, 1, made, 1, "Mike", risk),
        )
    assert monitor.alerts(1) == []
    assert ledger.events.for_user(1) == []


def test_a_low_risk_transfer_writes_no_alert(ledger: Ledger, monitor: FraudMonitor) -> None:
    risk = monitor.assess(1, 3, "Ravi", 50_000)
    ledger.transfer(
        1,
        3,
        50_000,
        receiver_label="Ravi",
        sender_label="John",
        within=lambda session, made: monitor.record(session, 1, made, 50_000, "Ravi", risk),
    )
    assert monitor.alerts(1) == []
    assert ledger.events.for_user(1, "fraud.detected") == []


def entry_ids(ledger: Ledger, user_id: int, kind: str) -> list[int]:
    with Session(ledger.engine) as session:
        account = session.exec(select(Account).where(Account.user_id == user_id)).one()
        query = select(LedgerEntry.id).where(
            LedgerEntry.account_id == account.id, LedgerEntry.type == kind
        )
        return [entry_id for entry_id in session.exec(query) if entry_id is not None]


def test_a_report_opens_one_case_per_payment_and_marks_its_alert(
    ledger: Ledger, monitor: FraudMonitor
) -> None:
    risk = monitor.assess(1, 5, "Mike", 900_000)
    transfer_id = ledger.transfer(
        1,
        5,
        900_000,
        receiver_label="Mike",
        sender_label="John",
        within=lambda session, made: monitor.record(session, 1, made, 900_000, "Mike", risk),
    ).transfer_id
    case = monitor.report(1, transfer_id, "unauthorized_transfer", "not me")
    assert (case.amount, case.status, case.transfer_id) == (900_000, "open", transfer_id)
    assert case.estimated_resolution - case.reported_at == timedelta(days=14)
    assert [alert.status for alert in monitor.alerts(1)] == ["reported"]
    with pytest.raises(AlreadyReported) as again:
        monitor.report(1, str(case.entry_id), "other", "")  # the same payment by entry id
    assert again.value.case_id == case.id


def test_only_the_users_own_payments_can_be_reported(ledger: Ledger, monitor: FraudMonitor) -> None:
    groceries = min(entry_ids(ledger, 1, "debit"))  # on the demo statement, no transfer id
    assert monitor.report(1, str(groceries), "scam", "").transfer_id is None
    [salary, *_] = entry_ids(ledger, 1, "credit")
    with pytest.raises(NotAPayment):
        monitor.report(1, str(salary), "scam", "")
    transfer_id = pay(ledger, 2, 3, 100, "Ravi")
    [janes_payment] = entry_ids(ledger, 2, "debit")
    for someone_elses in (transfer_id, str(janes_payment)):
        with pytest.raises(TransactionNotFound):
            monitor.report(1, someone_elses, "scam", "")
    for nothing in ("999999", "no-such-transfer", str(2**64)):
        with pytest.raises(TransactionNotFound):
            monitor.report(1, nothing, "scam", "")
    with Session(ledger.engine) as session:
        assert session.exec(select(FraudAlert)).all() == []


def test_a_payment_reported_from_many_threads_at_once_opens_one_case(
    ledger: Ledger, monitor: FraudMonitor
) -> None:
    """On PostgreSQL the reports race to the unique entry id; the losers learn its case."""
    transfer_id = pay(ledger, 1, 3, 100, "Ravi")
    start = threading.Barrier(8)

    def report() -> str:
        start.wait()
        try:
            return f"opened {monitor.report(1, transfer_id, 'scam', '').id}"
        except AlreadyReported as reported:
            return f"already {reported.case_id}"

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: report(), range(8)))
    opened = [answer.split()[1] for answer in answers if answer.startswith("opened")]
    assert len(opened) == 1
    assert sorted(answers) == sorted([f"opened {opened[0]}", *[f"already {opened[0]}"] * 7])
