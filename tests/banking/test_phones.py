"""Callers' numbers and keypad PINs (banking/phones.py), on SQLite and on PostgreSQL."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from banking import make_engine, seed_demo_data
from banking.models import PhoneNumber, PhonePin
from banking.phones import InvalidPhoneNumber, InvalidPin, Phones, normal_number
from banking.users import Users
from server import main

ROOT = Path(__file__).resolve().parents[2]
DEMO_DATA = ROOT / "data" / "demo_users.yaml"
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
        session.execute(delete(PhoneNumber))
        session.execute(delete(PhonePin))
    assert Phones(engine).caller("+15550100001") is None
    assert not seed_demo_data(engine, DEMO_DATA)  # the users were there already
    assert Phones(engine).caller("+15550100001") == 1
    assert Phones(engine).check_pin(1, DEMO_PIN)


def run_server_py(database_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    command = [sys.executable, "server.py", *args]
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        command, cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=60
    )


def test_numbers_and_pins_are_set_from_the_command_line(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(sqlite_url)
    seed_demo_data(engine, DEMO_DATA)
    added = run_server_py(sqlite_url, "--add-phone", "JANE@example.com", "+44 20 7946 0958")
    assert (added.returncode, added.stdout) == (
        0,
        "calls from +442079460958 are now jane@example.com's\n",
    )
    changed = run_server_py(sqlite_url, "--set-pin", "jane@example.com", stdin="864209\n864209\n")
    assert (changed.returncode, changed.stdout) == (0, "jane@example.com has a new PIN\n")
    assert "864209" not in changed.stdout + changed.stderr
    phones = Phones(engine)
    assert phones.caller("+442079460958") == 2
    assert phones.check_pin(2, "864209") and not phones.check_pin(2, DEMO_PIN)
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    for args, stdin, error in [
        (("--add-phone", "nobody@example.com", "+15550100077"), "", "no user registered"),
        (("--add-phone", "jane@example.com", "+15550100001"), "", "registered already"),
        (("--add-phone", "jane@example.com", "020 7946 0958"), "", "the country code"),
        (("--set-pin", "jane@example.com"), "12\n12\n", "a PIN is 4 to 8 digits"),
        (("--set-pin", "jane@example.com"), "1111\n2222\n", "the two PINs differ"),
    ]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        with pytest.raises(SystemExit, match=f"bankbot: .*{error}"):
            main(list(args))
    assert phones.check_pin(2, "864209")  # unchanged by the refused attempts
    assert phones.caller("+15550100001") == 1
    engine.dispose()
