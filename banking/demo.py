"""Create the demo users from data/demo_users.yaml on first start, never twice.

Their password and PIN are published (the contract documents them), so the demo users get
them only where publishing them is harmless: in demo mode, or when the operator asks for
them (`demo_credentials: published`, as the test suite does). Otherwise each start makes
sure that no demo user still has them: a new random password and PIN replace them,
printed once to the console (never logged) for whoever wants to try the demo users.
"""

import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select, text

from banking.db import writing
from banking.demo_history import generate_history
from banking.models import Account, Contact, LedgerEntry, PhoneNumber, PhonePin, User
from banking.money import rupees_to_paise
from banking.passwords import hash_password, verify_password
from banking.phones import hash_pin, register_phone, set_pin_hash

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M"


def seed_demo_data(
    engine: Engine, path: Path, now: datetime | None = None, *, published: bool = True
) -> bool:
    """Insert the demo users unless any user exists. Returns whether it inserted.

    Unless `published`, the demo users have a random password and PIN, and demo users
    of an earlier start that still have the published ones get random ones too.

    Generated histories (banking/demo_history.py) end at `now`, by default the present.

    Runs as one write transaction, so two processes starting at once cannot both
    insert; the loser's unique-key conflict means the data is already there. A database
    seeded before telephone numbers existed gets the demo numbers and PIN on its next start.
    """
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not published:
        spec = {**spec, "password": _random_password(), "pin": _random_pin()}
    try:
        with Session(writing(engine)) as session, session.begin():
            if session.exec(select(User).limit(1)).first() is not None:
                if session.exec(select(PhoneNumber).limit(1)).first() is None:
                    _add_phones(session, spec)
                if not published:
                    _replace_published(session, path, spec)
                return False
            _insert(session, spec, now or datetime.now(UTC))
    except IntegrityError:
        return False
    _advance_postgres_sequences(engine)
    if not published:
        _show_once(spec)
    return True


def _replace_published(session: Session, path: Path, spec: dict[str, Any]) -> None:
    """Demo users (under their demo email) that still have the published password or PIN
    get `spec`'s random ones. One bcrypt check per distinct hash: they share one."""
    documented = yaml.safe_load(path.read_text(encoding="utf-8"))
    users = [session.get(User, user["id"]) for user in spec["users"]]
    demo = {
        user.id: user
        for user, listed in zip(users, spec["users"], strict=True)
        if user is not None and user.email == listed["email"]
    }
    published_hashes = {
        hashed
        for hashed in {user.password_hash for user in demo.values()}
        if verify_password(documented["password"], hashed)
    }
    pins = list(session.exec(select(PhonePin).where(col(PhonePin.user_id).in_(list(demo)))))
    published_pins = {
        hashed
        for hashed in {row.pin_hash for row in pins}
        if verify_password(documented["pin"], hashed)
    }
    exposed = [u for u in demo.values() if u.password_hash in published_hashes]
    exposed_pins = [row for row in pins if row.pin_hash in published_pins]
    if not exposed and not exposed_pins:
        return
    password_hash, pin_hash = hash_password(spec["password"]), hash_pin(spec["pin"])
    for user in exposed:
        user.password_hash = password_hash
        session.add(user)
    for row in exposed_pins:
        row.pin_hash = pin_hash
        session.add(row)
    _show_once(spec)


def _random_password() -> str:
    return f"demo-{secrets.token_urlsafe(12)}"


def _random_pin() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def _show_once(spec: dict[str, Any]) -> None:
    """On the console, not in the log: the operator reads it once; it is stored nowhere."""
    print(
        "Demo users were given a random password and telephone PIN (demo mode is off, so "
        f"the published ones do not work): password {spec['password']}, PIN {spec['pin']}. "
        "This is shown once only.",
        file=sys.stderr,
        flush=True,
    )


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
