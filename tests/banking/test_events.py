"""Domain events: written with what they report, and seen by listeners in that transaction."""

from pathlib import Path

import pytest
from sqlmodel import Session, col, create_engine, select

from banking import InsufficientFunds, Ledger, make_engine, seed_demo_data
from banking.audit import AuditLog
from banking.events import Events
from banking.models import Event, LedgerEntry

DEMO_DATA = Path(__file__).resolve().parents[2] / "data" / "demo_users.yaml"


@pytest.fixture
def ledger(database_url: str) -> Ledger:
    engine = make_engine(database_url)
    seed_demo_data(engine, DEMO_DATA)
    yield Ledger(engine, Events(engine))
    engine.dispose()


def test_a_transfer_writes_an_event_for_each_side(ledger: Ledger) -> None:
    receipt = ledger.transfer(1, 3, 50_000, receiver_label="ravi", sender_label="John")
    [sent] = ledger.events.for_user(1)
    [received] = ledger.events.for_user(3)
    assert (sent.type, received.type) == ("transaction.completed", "transaction.received")
    assert sent.payload == {
        "transfer_id": receipt.transfer_id,
        "amount": 50_000,
        "channel": "internal",
        "counterparty": "ravi",
        "balance_after": 950_000,
    }
    assert received.payload["counterparty"] == "John"
    assert received.payload["balance_after"] == 550_000


def test_a_refused_transfer_writes_no_event(ledger: Ledger) -> None:
    with pytest.raises(InsufficientFunds):
        ledger.transfer(2, 1, 10_000_000, receiver_label="john", sender_label="Jane")
    assert ledger.events.for_user(2) == []
    assert ledger.events.for_user(1) == []


def test_listeners_write_in_the_events_transaction(ledger: Ledger) -> None:
    """A listener that fails rolls the transfer back: nothing is half-written."""
    seen: list[tuple[int, str]] = []

    def note(session: Session, event: Event) -> None:
        seen.append((event.user_id, event.type))
        if event.type == "transaction.received":
            raise RuntimeError("the listener's own write failed")

    ledger.events.subscribe(note)
    with pytest.raises(RuntimeError):
        ledger.transfer(1, 3, 50_000, receiver_label="ravi", sender_label="John")
    assert seen == [(1, "transaction.completed"), (3, "transaction.received")]
    assert ledger.balance(1) == 1_000_000
    assert ledger.events.for_user(1) == []
    with Session(ledger.engine) as session:
        made = select(LedgerEntry).where(col(LedgerEntry.transfer_id).is_not(None))
        assert session.exec(made).all() == []


def test_emit_in_its_own_transaction(ledger: Ledger) -> None:
    event = ledger.events.emit(2, "password.failed", {"channel": "chat"})
    assert event.id is not None
    assert [(e.type, e.payload) for e in ledger.events.for_user(2, "password.failed")] == [
        ("password.failed", {"channel": "chat"})
    ]


def test_an_older_database_gets_the_new_nullable_columns(tmp_path: Path) -> None:
    """A table made by an earlier version lacks a nullable column added since: it is added,
    and the rows already there keep their data."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE transfer_audit (id INTEGER PRIMARY KEY, created_at DATETIME NOT NULL,"
            " user_id INTEGER NOT NULL, channel VARCHAR NOT NULL, amount INTEGER NOT NULL,"
            " receiver_user_id INTEGER NOT NULL, receiver VARCHAR NOT NULL,"
            " outcome VARCHAR NOT NULL)"
        )
        connection.exec_driver_sql(
            "INSERT INTO transfer_audit VALUES (1, '2026-01-01 10:00:00', 1, 'chat', 500, 3,"
            " 'ravi', 'completed')"
        )
    engine.dispose()
    engine = make_engine(url)
    [row] = AuditLog(engine).for_user(1)
    assert (row.receiver, row.reason, row.transfer_id) == ("ravi", None, None)
    engine.dispose()
