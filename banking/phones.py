"""Telephone numbers and keypad PINs: who is calling, and the phone's second factor.

Numbers are kept in E.164 form ("+15550100001"), so "+1 555-010-0001" from a form and
"+15550100001" from a carrier are one number. A PIN is 4 to 8 digits, bcrypt-hashed like a
password (banking/passwords.py) and, like it, never stored, logged or repeated in plain.
"""

import re

from sqlalchemy import Engine
from sqlmodel import Session

from banking.db import writing
from banking.models import PhoneNumber, PhonePin
from banking.passwords import burn_password_check, hash_password, verify_password

E164 = re.compile(r"\+[1-9][0-9]{6,14}")
# What people write between the digits of a number.
SEPARATORS = re.compile(r"[\s().-]")
# ASCII digits only: \d matches the digits of every script.
PIN = re.compile(r"[0-9]{4,8}")


class InvalidPhoneNumber(ValueError):
    pass


class InvalidPin(ValueError):
    pass


def normal_number(number: str) -> str | None:
    """The number in E.164 form, or None when it is not a full international number."""
    compact = SEPARATORS.sub("", number.strip())
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    return compact if E164.fullmatch(compact) else None


def is_pin(pin: str) -> bool:
    return PIN.fullmatch(pin) is not None


def hash_pin(pin: str) -> str:
    """The bcrypt hash of a PIN; raises InvalidPin unless it is 4 to 8 digits."""
    if not is_pin(pin):
        raise InvalidPin("a PIN is 4 to 8 digits")
    return hash_password(pin)


def register_phone(session: Session, user_id: int, number: str) -> None:
    """Add a number to the user in the caller's transaction; raises InvalidPhoneNumber."""
    normal = normal_number(number)
    if normal is None:
        raise InvalidPhoneNumber(f"not an international (E.164) number: {number!r}")
    session.add(PhoneNumber(number=normal, user_id=user_id))


def set_pin_hash(session: Session, user_id: int, pin_hash: str) -> None:
    """Give the user this PIN hash (replacing any), in the caller's transaction."""
    saved = session.get(PhonePin, user_id)
    if saved is None:
        session.add(PhonePin(user_id=user_id, pin_hash=pin_hash))
    else:
        saved.pin_hash = pin_hash
        session.add(saved)


class Phones:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def caller(self, number: str) -> int | None:
        """The user the number is registered on, or None (unknown or malformed number)."""
        normal = normal_number(number)
        if normal is None:
            return None
        with Session(self.engine) as session:
            row = session.get(PhoneNumber, normal)
            return None if row is None else row.user_id

    def check_pin(self, user_id: int, pin: str) -> bool:
        """Whether the PIN is the user's; a user without a PIN costs the same bcrypt check."""
        with Session(self.engine) as session:
            row = session.get(PhonePin, user_id)
        if row is None or not is_pin(pin):
            burn_password_check(pin)
            return False
        return verify_password(pin, row.pin_hash)

    def set_pin(self, user_id: int, pin: str) -> None:
        """Raises InvalidPin unless the PIN is 4 to 8 digits."""
        pin_hash = hash_pin(pin)  # ~0.25 s: before the write lock, not in it
        with Session(writing(self.engine)) as session, session.begin():
            set_pin_hash(session, user_id, pin_hash)

    def add_number(self, user_id: int, number: str) -> None:
        """Raises InvalidPhoneNumber; a number already registered raises IntegrityError."""
        with Session(writing(self.engine)) as session, session.begin():
            register_phone(session, user_id, number)
