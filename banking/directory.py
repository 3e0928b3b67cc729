"""Who the users are: names, contacts, callers' numbers, password and PIN checks."""

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from banking.models import Account, Contact, User
from banking.passwords import verify_password
from banking.phones import Phones

# What confirms a transfer: the password, or on the phone the PIN typed on the keypad.
Factor = Literal["password", "pin"]


@dataclass(frozen=True)
class Person:
    id: int
    name: str

    @property
    def first_name(self) -> str:
        return self.name.split()[0]


@dataclass(frozen=True)
class ContactEntry:
    alias: str
    user_id: int

    @property
    def label(self) -> str:
        """How the alias is shown and spoken: 'ravi' → 'Ravi'."""
        return self.alias.title()


class Directory:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.phones = Phones(engine)

    def person(self, user_id: int) -> Person | None:
        with Session(self.engine) as session:
            user = session.get(User, user_id)
            return None if user is None else Person(user_id, user.name)

    def contacts(self, user_id: int) -> list[ContactEntry]:
        """The user's contacts in the order they were added."""
        with Session(self.engine) as session:
            query = select(Contact).where(Contact.owner_id == user_id).order_by(col(Contact.id))
            return [ContactEntry(c.alias, c.contact_user_id) for c in session.exec(query)]

    def check_password(self, user_id: int, password: str) -> bool:
        with Session(self.engine) as session:
            user = session.get(User, user_id)
            return user is not None and verify_password(password, user.password_hash)

    def account_holder(self, account_id: int) -> int | None:
        """The user whose account this is; None when there is no such account."""
        with Session(self.engine) as session:
            account = session.get(Account, account_id)
            return None if account is None else account.user_id

    def account_id(self, user_id: int) -> int | None:
        """The id of the user's account; None when the user has none."""
        with Session(self.engine) as session:
            query = select(Account.id).where(Account.user_id == user_id)
            return session.exec(query).first()

    def check_factor(self, user_id: int, secret: str, factor: Factor) -> bool:
        """Whether `secret` is the user's password or PIN, as `factor` says."""
        if factor == "pin":
            return self.phones.check_pin(user_id, secret)
        return self.check_password(user_id, secret)

    def caller(self, number: str) -> int | None:
        """The user whose registered number is calling, or None."""
        return self.phones.caller(number)
