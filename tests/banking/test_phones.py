"""Callers' numbers and keypad PINs (banking/phones.py), on SQLite and on PostgreSQL."""

from pathlib import Path

import pytest
from sqlalchemy import Engine, delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from banking import make_engine, seed_demo_data
from banking.models import PhoneNumber, PhonePin
from banking.phones import InvalidPhoneNumber, InvalidPin, Phones, normal_number
from banking.users import Users

DEMO_DATA = Path(__file__).resolve().parents[2] / "data" / "demo_users.yaml"
DEMO_PIN = "1234"


@pytest.fixture
def engine(database_url: str) -> Engine:
    engine = make_engine(database_url)
    assert seed_demo_data(engine, DEMO_DATA)
    yield engine
    engine.dispose()


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        ("+15550100001", "+15550100001"),
        ("+1 (555) 010-0001", "+15550100001"),
        ("0044 20 7946 0958", "+442079460958"),
        (" +91 98765 43210 ", "+919876543210"),
        ("5550100001", None),  # no country code
        ("+0 555 010", None),
        ("+1555010000123456", None),  # longer than E.164 allows
        ("+1555abc0001", None),
        ("", None),
    ],
)
def test_numbers_are_kept_in_e164_form(written: str, kept: str | None) -> None:
    assert normal_number(written) == kept


def test_a_registered_number_names_its_user(engine: Engine) -> None:
    phones = Phones(engine)
    assert phones.caller("+15550100001") == 1
    assert phones.caller("+1 555 010 0003") == 3
    assert phones.caller("+15550100099") is None
    assert phones.caller("anonymous") is None


def test_the_pin_is_kept_as_a_bcrypt_hash_and_checked(engine: Engine) -> None:
    phones = Phones(engine)
    with Session(engine) as session:
        stored = session.get(PhonePin, 1)
    assert stored is not None and stored.pin_hash.startswith("$2b$")
    assert DEMO_PIN not in stored.pin_hash
    assert phones.check_pin(1, DEMO_PIN)
    for wrong in ("1235", "12345", "", "abcd", "1234#", "password123"):
        assert not phones.check_pin(1, wrong), wrong


def test_a_user_without_a_pin_is_never_right(engine: Engine) -> None:
    new = Users(engine).register("asha@example.com", "Asha Rao", "long-enough-1")
    assert not Phones(engine).check_pin(new.user_id, DEMO_PIN)


def test_a_new_pin_replaces_the_old_and_must_be_4_to_8_digits(engine: Engine) -> None:
    phones = Phones(engine)
    for bad in ("123", "123456789", "12a4", "١٢٣٤"):  # the last: Arabic-Indic digits
        with pytest.raises(InvalidPin):
            phones.set_pin(2, bad)
    phones.set_pin(2, "98765432")
    assert phones.check_pin(2, "98765432")
    assert not phones.check_pin(2, DEMO_PIN)
    assert phones.check_pin(1, DEMO_PIN)  # another user's PIN is untouched


def test_a_number_belongs_to_one_user(engine: Engine) -> None:
    phones = Phones(engine)
    with pytest.raises(IntegrityError):
        phones.add_number(2, "+1 555 010 0001")  # user 1's
    with pytest.raises(InvalidPhoneNumber):
        phones.add_number(2, "555-0100")
    phones.add_number(2, "+44 20 7946 0958")
    assert phones.caller("+442079460958") == 2
    assert phones.caller("+15550100002") == 2  # the first number still works


def test_a_demo_database_seeded_before_phones_gets_them_on_its_next_start(
    engine: Engine,
) -> None:
    with Session(engine) as session, session.begin():
        session.exec(delete(PhoneNumber))  # type: ignore[call-overload]
        session.exec(delete(PhonePin))  # type: ignore[call-overload]
    assert Phones(engine).caller("+15550100001") is None
    assert not seed_demo_data(engine, DEMO_DATA)  # the users were there already
    assert Phones(engine).caller("+15550100001") == 1
    assert Phones(engine).check_pin(1, DEMO_PIN)
