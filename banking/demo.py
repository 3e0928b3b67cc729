"""Create the demo users from data/demo_users.yaml on first start, never twice."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select, text

from banking.db import writing
from banking.demo_history import generate_history
from banking.models import Account, Contact, LedgerEntry, PhoneNumber, User
from banking.money import rupees_to_paise
from banking.passwords import hash_password
from banking.phones import hash_pin, register_phone, set_pin_hash

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M"


def seed_demo_data(engine: Engine, path: Path, now: datetime | None = None) -> bool:
    """Insert the demo users unless any user exists. Returns whether it inserted.

    Generated histories (banking/demo_history.py) end at `now`, by default the present.

    Runs as one write transaction, so two processes starting at once cannot both
    insert; the loser's unique-key conflict means the data is already there. A database
    seeded before telephone numbers existed gets the demo numbers and PIN on its next start.
    """
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    try:
        with Session(writing(engine)) as session, session.begin():
            if session.exec(select(User).limit(1)).first() is not None:
                if session.exec(select(PhoneNumber).limit(1)).first() is None:
                    _add_phones(session, spec)
                return False
            _insert(session, spec, now or datetime.now(UTC))
    except IntegrityError:
        return False
    _advance_postgres_sequences(engine)
    return True


def _add_phones(session: Session, spec: dict[str, Any]) -> None:
    """Each demo user's number and the one published demo PIN (for the demo users that
    are still there, under their demo email)."""
    pin_hash = hash_pin(spec["pin"])
    for user in spec["users"]:
        row = session.get(User, user["id"])
        if row is not None and row.email == user["email"]:
            register_phone(session, user["id"], user["phone"])
            set_pin_hash(session, user["id"], pin_hash)


def _insert(session: Session, spec: dict[str, Any], now: datetime) -> None:
    # One hash for the one published demo password: bcrypt costs ~0.25 s per hash.
    password_hash = hash_password(spec["password"])
    zone = ZoneInfo(spec["timezone"])
    for user in spec["users"]:
        session.add(
            User(id=user["id"], name=user["name"], email=user["email"], password_hash=password_hash)
        )
    session.flush()
    _add_phones(session, spec)
    for user in spec["users"]:
        history_spec = user.get("generated_history")
        generated = generate_history(history_spec, now, zone) if history_spec else []
        balance = (
            generated[-1].balance_after
            if generated
            else rupees_to_paise(
                history_spec["opening_balance"] if history_spec else user["balance"]
            )
        )
        account = Account(user_id=user["id"], balance=balance)
        session.add(account)
        session.flush()
        assert account.id is not None  # given by the flush
        for alias, contact_id in user.get("contacts", {}).items():
            session.add(Contact(owner_id=user["id"], alias=alias, contact_user_id=contact_id))
        for made in generated:
            session.add(
                LedgerEntry(
                    account_id=account.id,
                    type=made.type,
                    amount=made.amount,
                    counterparty=made.counterparty,
                    description=made.description,
                    created_at=made.created_at,
                    balance_after=made.balance_after,
                    category=made.category,
                )
            )
        for entry in reversed(user.get("history", [])):  # oldest first, so ids follow time
            session.add(
                LedgerEntry(
                    account_id=account.id,
                    type=entry["type"],
                    amount=rupees_to_paise(entry["amount"]),
                    counterparty=entry["counterparty"],
                    description=entry["description"],
                    created_at=datetime.strptime(entry["timestamp"], TIMESTAMP_FORMAT).replace(
                        tzinfo=zone
                    ),
                    balance_after=rupees_to_paise(entry["balance_after"]),
                    category=entry["category"],
                )
            )


def _advance_postgres_sequences(engine: Engine) -> None:
    """Explicit ids leave PostgreSQL's id sequence behind; move it past them."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as connection:
        connection.execute(
            text("SELECT setval(pg_get_serial_sequence('\"user\"', 'id'), MAX(id)) FROM \"user\"")
        )
