"""Accounts by email: registering, logging in, profiles and staff roles.

A login for an unknown email costs the same bcrypt check as one with a wrong password and
fails the same way, so neither the answer nor its timing tells whether an email is
registered.
"""

from dataclasses import dataclass
from typing import Literal, cast, get_args

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from banking.db import writing
from banking.models import Account, StaffRole, User
from banking.passwords import burn_password_check, hash_password, verify_password, warm_up

Role = Literal["customer", "agent", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
# Who works the support tickets: agents and admins.
STAFF: tuple[Role, ...] = ("agent", "admin")


class EmailTaken(Exception):
    pass


class UnknownUser(LookupError):
    pass


@dataclass(frozen=True)
class Profile:
    user_id: int
    email: str
    name: str
    role: Role


def normal_email(email: str) -> str:
    """Emails are kept and compared trimmed and in lower case."""
    return email.strip().lower()


class Users:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        warm_up()

    def register(self, email: str, name: str, password: str) -> Profile:
        """A new customer with an empty account. The password must meet the rules
        (banking.passwords.password_problem); raises EmailTaken."""
        email = normal_email(email)
        password_hash = hash_password(password)  # ~0.25 s: before the write lock, not in it
        try:
            with Session(writing(self.engine)) as session, session.begin():
                taken = session.exec(select(User.id).where(User.email == email)).first()
                if taken is not None:
                    raise EmailTaken(email)
                user = User(name=name, email=email, password_hash=password_hash)
                session.add(user)
                session.flush()
                assert user.id is not None
                session.add(Account(user_id=user.id, balance=0))
                return Profile(user.id, email, name, "customer")
        except IntegrityError as error:  # registered at the same moment by another request
            raise EmailTaken(email) from error

    def authenticate(self, email: str, password: str) -> Profile | None:
        """The user with this email and password, or None, in the same time either way."""
        with Session(self.engine) as session:
            user = (
                None  # no email holds a NUL, and PostgreSQL cannot even compare one
                if "\x00" in email
                else session.exec(select(User).where(User.email == normal_email(email))).first()
            )
            if user is None:
                burn_password_check(password)
                return None
            if not verify_password(password, user.password_hash):
                return None
            assert user.id is not None
            return Profile(user.id, user.email, user.name, self._role(session, user.id))

    def profile(self, user_id: int) -> Profile:
        with Session(self.engine) as session:
            user = session.get(User, user_id)
            if user is None:
                raise UnknownUser(user_id)
            return Profile(user_id, user.email, user.name, self._role(session, user_id))

    def by_email(self, email: str) -> Profile:
        """The user registered with the email; raises UnknownUser."""
        with Session(self.engine) as session:
            user = session.exec(select(User).where(User.email == normal_email(email))).first()
            if user is None or user.id is None:
                raise UnknownUser(email)
            return Profile(user.id, user.email, user.name, self._role(session, user.id))

    def role(self, user_id: int) -> Role:
        with Session(self.engine) as session:
            return self._role(session, user_id)

    def grant(self, email: str, role: Role) -> Profile:
        """Make a registered user an agent or admin, or (role "customer") neither again."""
        with Session(self.engine) as session:
            user = session.exec(select(User).where(User.email == normal_email(email))).first()
            if user is None or user.id is None:
                raise UnknownUser(email)
            staff = session.get(StaffRole, user.id)
            if staff is not None:
                session.delete(staff)
                session.flush()
            if role != "customer":
                session.add(StaffRole(user_id=user.id, role=role))
            session.commit()
            return Profile(user.id, user.email, user.name, role)

    @staticmethod
    def _role(session: Session, user_id: int) -> Role:
        staff = session.get(StaffRole, user_id)
        # The table's CHECK constraint allows "agent" and "admin" only.
        return "customer" if staff is None else cast(Role, staff.role)
