"""Ledger behaviour and invariants, on SQLite and on PostgreSQL."""

import random
import threading
from collections import Counter
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from banking import (
    InsufficientFunds,
    InvalidAmount,
    Ledger,
    TransferAlreadyMade,
    make_engine,
    seed_demo_data,
)
from banking.models import Account, LedgerEntry, User

DEMO_DATA = Path(__file__).resolve().parents[2] / "data" / "demo_users.yaml"
DEMO_USERS = [1, 2, 3, 4, 5]


@pytest.fixture
def ledger(database_url: str) -> Ledger:
    engine = make_engine(database_url)
    assert seed_demo_data(engine, DEMO_DATA)
    yield Ledger(engine)
    engine.dispose()


def balances(ledger: Ledger) -> dict[int, int]:
    return {user: ledger.balance(user) for user in DEMO_USERS}


def transfer_entries(ledger: Ledger) -> list[LedgerEntry]:
    with Session(ledger.engine) as session:
        query = select(LedgerEntry).where(col(LedgerEntry.transfer_id).is_not(None))
        return list(session.exec(query.order_by(col(LedgerEntry.id))))


def test_demo_data_as_documented(ledger: Ledger) -> None:
    assert balances(ledger) == {1: 1_000_000, 2: 500_000, 3: 500_000, 4: 500_000, 5: 500_000}
    history = ledger.history(1, 10)
    assert [entry.description for entry in history] == [
        "Received ₹5000 from Salary",
        "Paid ₹2000 for groceries",
        "Sent ₹1000 to Ravi",
        "Received ₹1500 from Mom",
    ]
    assert [entry.category for entry in history] == ["salary", "groceries", "transfer", "transfer"]
    assert ledger.history(2, 10) == []


def test_demo_data_is_created_once(database_url: str) -> None:
    counts = []
    for expected in (True, False, False):  # first start, then two restarts
        engine = make_engine(database_url)
        assert seed_demo_data(engine, DEMO_DATA) is expected
        with Session(engine) as session:
            users = len(session.exec(select(User)).all())
            counts.append((users, len(session.exec(select(LedgerEntry)).all())))
        engine.dispose()
    assert counts[0][0] == 6  # the contract's five and Priya, who has generated history
    assert counts[1:] == [counts[0], counts[0]]


def test_transfer_moves_money_and_writes_both_sides(ledger: Ledger) -> None:
    receipt = ledger.transfer(1, 3, 50_050, receiver_label="Ravi", sender_label="John")
    assert receipt.sender_balance == 1_000_000 - 50_050
    assert balances(ledger)[3] == 500_000 + 50_050
    debit, credit = transfer_entries(ledger)
    assert (debit.type, debit.amount, debit.description) == (
        "debit",
        50_050,
        "Sent ₹500.50 to Ravi",
    )
    assert (credit.type, credit.description) == ("credit", "Received ₹500.50 from John")
    assert debit.transfer_id == credit.transfer_id == receipt.transfer_id
    assert (debit.balance_after, credit.balance_after) == (949_950, 550_050)
    assert debit.category == credit.category == "transfer"
    assert ledger.history(1, 1)[0].description == "Sent ₹500.50 to Ravi"


def test_history_returns_the_most_recent_first(ledger: Ledger) -> None:
    for amount in (100, 200, 300):
        ledger.transfer(1, 2, amount, receiver_label="Jane", sender_label="John")
    assert [entry.amount for entry in ledger.history(1, 2)] == [300, 200]


def test_insufficient_funds_changes_nothing(ledger: Ledger) -> None:
    before = balances(ledger)
    with pytest.raises(InsufficientFunds) as refused:
        ledger.transfer(2, 1, 500_001, receiver_label="John", sender_label="Jane")
    assert (refused.value.balance, refused.value.amount) == (500_000, 500_001)
    assert balances(ledger) == before
    assert transfer_entries(ledger) == []


@pytest.mark.parametrize("amount", [0, -100])
def test_non_positive_amounts_are_refused(ledger: Ledger, amount: int) -> None:
    with pytest.raises(InvalidAmount):
        ledger.transfer(1, 2, amount, receiver_label="Jane", sender_label="John")
    assert transfer_entries(ledger) == []


def test_transfer_to_oneself_is_refused(ledger: Ledger) -> None:
    with pytest.raises(InvalidAmount):
        ledger.transfer(1, 1, 100, receiver_label="John", sender_label="John")


def test_a_transfer_id_is_used_once_even_when_raced(ledger: Ledger) -> None:
    """Two confirmations of one conversation's transfer, at once: one moves money."""
    outcomes: list[str] = []

    def confirm() -> None:
        try:
            ledger.transfer(
                1,
                2,
                50_000,
                receiver_label="Ravi",
                sender_label="John",
                transfer_id="conversation-7",
            )
            outcomes.append("made")
        except TransferAlreadyMade:
            outcomes.append("refused")

    threads = [threading.Thread(target=confirm) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["made", "refused", "refused", "refused"]
    assert ledger.balance(1) == 950_000
    assert ledger.balance(2) == 550_000
    assert len(transfer_entries(ledger)) == 2


def test_concurrent_transfers_keep_the_books(ledger: Ledger) -> None:
    """8 threads × 100 random transfers: money is conserved and every entry chains."""
    opening = balances(ledger)
    successes = Counter[str]()
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(100):
            sender, receiver = rng.sample(DEMO_USERS, 2)
            try:
                ledger.transfer(
                    sender, receiver, rng.randint(1, 300_000), receiver_label="R", sender_label="S"
                )
                successes["ok"] += 1
            except InsufficientFunds:
                successes["refused"] += 1
            except BaseException as error:  # any other failure fails the test below
                errors.append(error)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert successes["ok"] + successes["refused"] == 800
    assert successes["ok"] > 100  # the run really moved money
    final = balances(ledger)
    assert sum(final.values()) == sum(opening.values())
    assert min(final.values()) >= 0
    entries = transfer_entries(ledger)
    assert len(entries) == 2 * successes["ok"]
    assert all(count == 2 for count in Counter(e.transfer_id for e in entries).values())

    with Session(ledger.engine) as session:
        account_user = {a.id: a.user_id for a in session.exec(select(Account))}
    running = dict(opening)
    for entry in entries:  # ids follow commit order under the locks
        user = account_user[entry.account_id]
        running[user] += entry.amount if entry.type == "credit" else -entry.amount
        assert entry.balance_after == running[user]
    assert running == final
