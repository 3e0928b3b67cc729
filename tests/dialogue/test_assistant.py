"""Assistant.turn() paths beyond the contract's examples, through the real components."""

from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest

from banking import ContactEntry, Directory, Ledger, make_engine, seed_demo_data
from banking.audit import AuditLog
from banking.fraud import FraudMonitor
from banking.limits import Limits
from banking.lockout import PasswordGuard
from banking.store import MemoryStore
from banking.teller import Teller
from dialogue import Assistant
from dialogue.contacts import find_contact, match_contact
from nlu import BackendSettings, build_pipeline
from server import DEMO_DATA
from tests.conftest import settings_for


@pytest.fixture
def assistant(sqlite_url: str) -> Iterator[Assistant]:
    settings = settings_for(sqlite_url, BANKBOT_ASSISTANT__HISTORY_MAX_COUNT="3")
    engine = make_engine(sqlite_url)
    seed_demo_data(engine, DEMO_DATA)
    backends = BackendSettings(rasa=settings.rasa, llm=settings.llm, embedding=settings.embedding)
    pipeline = build_pipeline(settings.nlu, backends)
    sessions, directory = MemoryStore(ttl_s=60), Directory(engine)
    guard = PasswordGuard(sessions, directory, settings.lockout)
    ledger = Ledger(engine)
    fraud = FraudMonitor(engine, ledger.events, settings.fraud, ZoneInfo("Asia/Kolkata"))
    limits = Limits(sessions, settings.limits)
    teller = Teller(ledger, guard, limits, AuditLog(engine), fraud)
    yield Assistant(pipeline, ledger, directory, settings.assistant, sessions, teller)
    engine.dispose()


CONTACTS = [
    ContactEntry(alias, n) for n, alias in enumerate(["ravi", "jane", "john", "mom", "mike"])
]


@pytest.mark.parametrize(
    ("spoken", "alias"),
    [
        ("ravi", "ravi"),
        ("RAVI", "ravi"),
        ("ravi kumar", "ravi"),
        (" mom ", "mom"),
        ("my mom", "mom"),
        ("mum", "mom"),
        ("mother", "mom"),
        ("rabi", "ravi"),
        ("robby", None),
        ("jon", "john"),
        ("jain", "jane"),
        ("mik", "mike"),
        ("myke", "mike"),
        ("bob", None),
        ("unknown", None),
        ("dad", None),
        ("", None),
    ],
)
def test_find_contact(spoken: str, alias: str | None) -> None:
    found = find_contact(spoken, CONTACTS)
    assert (found.alias if found else None) == alias


def test_paise_amounts_are_said_and_moved_exactly(assistant: Assistant) -> None:
    text = "send five hundred rupees and fifty paise to ravi"
    asked = assistant.turn(1, text)
    assert asked.reply == "I'll send ₹500.50 to Ravi. Please confirm with your password."
    done = assistant.turn(1, text, "password123")
    assert done.reply == "Successfully transferred ₹500.50 to Ravi. Your new balance is ₹9499.50."
    assert done.data == {"require_password": False, "success": True, "balance": 9499.5}
    assert assistant.ledger.balance(3) == 550_050


def test_history_is_capped_and_empty_history_is_said(assistant: Assistant) -> None:
    capped = assistant.turn(1, "show my last 40 transactions")
    assert capped.data["transaction_count"] == 3
    empty = assistant.turn(2, "show my transactions")
    assert empty.reply == "You have no transactions yet."
    assert empty.data["transactions"] == []


def test_the_receiver_sees_the_transfer(assistant: Assistant) -> None:
    assistant.turn(1, "pay mom 250", "password123")
    latest = assistant.turn(4, "what was my last transaction")
    assert latest.reply == "Your recent transactions: Received ₹250 from John."
    assert latest.data["transactions"][0]["balance_after"] == 5250


def test_an_empty_password_counts_as_none(assistant: Assistant) -> None:
    reply = assistant.turn(1, "send 10 to jane", "")
    assert reply.data == {"require_password": True, "success": False}
    assert assistant.ledger.balance(1) == 1_000_000


def test_two_amounts_are_not_guessed(assistant: Assistant) -> None:
    reply = assistant.turn(1, "send 500 to ravi 200", "password123")
    assert reply.reply.startswith("I'm not sure what you want to do.")
    assert assistant.ledger.balance(1) == 1_000_000


@pytest.mark.parametrize(("said", "heard_as"), [("mum", "Mom"), ("rabi", "Ravi"), ("myke", "Mike")])
def test_receivers_are_found_by_ear(assistant: Assistant, said: str, heard_as: str) -> None:
    reply = assistant.turn(1, f"send 500 to {said}")
    assert reply.reply == f"I'll send ₹500 to {heard_as}. Please confirm with your password."


@pytest.mark.parametrize(
    ("spoken", "alias", "sure"),
    [("ravi", "ravi", True), ("mum", "mom", True), ("rabi", "ravi", True), ("rav", "ravi", False)],
)
def test_names_only_spelled_alike_are_not_sure(spoken: str, alias: str, sure: bool) -> None:
    match = match_contact(spoken, CONTACTS)
    assert match is not None
    assert (match.contact.alias, match.sure) == (alias, sure)


def test_a_password_typed_as_the_message_is_refused_and_flagged(assistant: Assistant) -> None:
    assistant.turn(1, "send 100 to ravi", session_id="s")
    reply = assistant.turn(1, "password123", session_id="s")
    assert reply.reply.startswith("Please never say or type your password as a message")
    assert reply.message_was_secret
    assert "password123" not in reply.reply
    assert assistant.turn(1, "confirm", "password123", session_id="s").data.get("success") is None
    assert assistant.ledger.balance(1) == 1_000_000
    assert not assistant.turn(1, "send 100 to ravi", session_id="s").message_was_secret
