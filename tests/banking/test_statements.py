"""Generated demo history, periods and spending sums, on SQLite and on PostgreSQL."""

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlmodel import Session, select

from banking import Ledger, make_engine, rupees_to_paise, seed_demo_data
from banking.demo_history import generate_history
from banking.models import Account
from banking.statements import CATEGORIES, PERIODS, Statements, period_range
from nlu import result

DEMO_DATA = Path(__file__).resolve().parents[2] / "data" / "demo_users.yaml"
ZONE = ZoneInfo("Asia/Kolkata")
PRIYA = 6
# A fixed first start: 15 March 2026, 18:30 in Kolkata.
FIRST_START = datetime(2026, 3, 15, 13, 0, tzinfo=UTC)


def priya_spec() -> dict:
    spec = yaml.safe_load(DEMO_DATA.read_text(encoding="utf-8"))
    return next(user for user in spec["users"] if user["id"] == PRIYA)["generated_history"]


def test_the_history_is_the_same_for_the_same_start_and_chains_its_balances() -> None:
    spec = priya_spec()
    entries = generate_history(spec, FIRST_START, ZONE)
    assert entries == generate_history(spec, FIRST_START, ZONE)
    assert entries != generate_history(spec, FIRST_START + timedelta(days=40), ZONE)
    balance = rupees_to_paise(spec["opening_balance"])
    for entry in entries:
        balance += entry.amount if entry.type == "credit" else -entry.amount
        assert entry.balance_after == balance >= 0
        assert entry.category in CATEGORIES
    times = [entry.created_at for entry in entries]
    assert times == sorted(times)
    # From 1 December 2025 (three months before March) up to the first start, no later.
    assert times[0].astimezone(ZONE) >= datetime(2025, 12, 1, tzinfo=ZONE)
    assert times[-1] <= FIRST_START
    salaries = [e.created_at.astimezone(ZONE).date() for e in entries if e.category == "salary"]
    assert [(day.month, day.day) for day in salaries] == [(12, 1), (1, 1), (2, 1), (3, 1)]
    kinds = Counter(entry.category for entry in entries)
    assert {"groceries", "dining", "transport", "bills"} <= set(kinds)
    assert kinds["groceries"] >= 20  # about 2.5 a week over 15 weeks


def test_the_seeded_balance_is_the_last_entry_balance(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert seed_demo_data(engine, DEMO_DATA, now=FIRST_START)
        ledger = Ledger(engine)
        history = ledger.history(PRIYA, 1000)
        assert history[0].balance_after == ledger.balance(PRIYA)
        assert len(history) == len(generate_history(priya_spec(), FIRST_START, ZONE))
        assert ledger.balance(1) == 1_000_000 and len(ledger.history(1, 1000)) == 4
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        ("today", datetime(2026, 1, 1), datetime(2026, 1, 2)),
        ("yesterday", datetime(2025, 12, 31), datetime(2026, 1, 1)),
        ("this_week", datetime(2025, 12, 29), datetime(2026, 1, 5)),  # from Monday
        ("last_week", datetime(2025, 12, 22), datetime(2025, 12, 29)),
        ("this_month", datetime(2026, 1, 1), datetime(2026, 2, 1)),
        ("last_month", datetime(2025, 12, 1), datetime(2026, 1, 1)),
        ("this_year", datetime(2026, 1, 1), datetime(2027, 1, 1)),
    ],
)
def test_periods_are_local_calendar_ranges(period: str, start: datetime, end: datetime) -> None:
    # 31 December 2025, 20:00 UTC is already 1 January 2026 (01:30) in Kolkata.
    now = datetime(2025, 12, 31, 20, 0, tzinfo=UTC)
    assert period_range(period, now, ZONE) == (  # type: ignore[arg-type]  # a str from parametrize
        start.replace(tzinfo=ZONE),
        end.replace(tzinfo=ZONE),
    )


def test_spending_sums_the_debits_of_the_period_per_category(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        seed_demo_data(engine, DEMO_DATA, now=FIRST_START)
        statements = Statements(engine)
        generated = generate_history(priya_spec(), FIRST_START, ZONE)
        for period in ("this_month", "last_month", "this_week", "this_year"):
            start, end = period_range(period, FIRST_START, ZONE)  # type: ignore[arg-type]  # str
            expected = Counter[str]()
            for entry in generated:
                if entry.type == "debit" and start <= entry.created_at < end:
                    expected[entry.category] += entry.amount
            spending = statements.spending(PRIYA, start, end)
            assert dict(spending.by_category) == dict(expected)
            amounts = [paise for _name, paise in spending.by_category]
            assert amounts == sorted(amounts, reverse=True)
            assert spending.total == sum(expected.values()) > 0
            groceries = statements.spending(PRIYA, start, end, "groceries")
            assert groceries.total == expected["groceries"]
    finally:
        engine.dispose()


def test_a_database_made_before_categories_gets_the_column(sqlite_url: str) -> None:
    """Its entries have no category: they count as "other"."""
    engine = make_engine(sqlite_url)
    seed_demo_data(engine, DEMO_DATA, now=FIRST_START)
    with engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE ledgerentry DROP COLUMN category")
    engine.dispose()
    engine = make_engine(sqlite_url)  # the next start adds the column back, empty
    try:
        with Session(engine) as session:
            account = session.exec(select(Account).where(Account.user_id == 1)).one()
        statements = Statements(engine)
        start, end = datetime(2025, 11, 1, tzinfo=ZONE), datetime(2025, 12, 1, tzinfo=ZONE)
        assert statements.spending(1, start, end).by_category == [("other", 300_000)]
        assert statements.page(1, page=1, limit=10, category="other").total == 4
        assert statements.page(1, page=1, limit=10, category="groceries").total == 0
        assert len(statements.recent(account.id, 10)) == 4
    finally:
        engine.dispose()


def test_the_nlu_names_the_same_categories_and_periods() -> None:
    """nlu imports no banking, so it keeps its own copy of the names."""
    assert result.CATEGORIES == CATEGORIES
    assert result.PERIODS == PERIODS
