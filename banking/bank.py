"""The bank's services, built once from its settings: what banking/api's routes depend on.

`open_bank()` builds the object graph; `Bank` holds it, typed, for the composition root
(server.py) to hand to the routes (banking/api/deps.py) and to the assistant.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine

from banking.audit import AuditLog
from banking.auth import AuthSettings, Tokens, signing_secret
from banking.config import anchor_sqlite_path
from banking.db import open_engine
from banking.demo import seed_demo_data
from banking.directory import Directory
from banking.events import Events
from banking.fraud import FraudMonitor, FraudSettings
from banking.idempotency import IdempotencySettings, IdempotencyStore
from banking.ledger import Ledger
from banking.limits import Limits, LimitSettings
from banking.lockout import LockoutSettings, PasswordGuard
from banking.logins import Logins
from banking.money import rupees_to_paise
from banking.notifications import Notifications
from banking.statements import Statements
from banking.store import KeyValueStore, StoreSettings, make_store
from banking.support import SupportDesk
from banking.teller import Teller
from banking.users import Users
from banking.webhooks import Dispatcher, Subscriptions, WebhookSettings, queue_deliveries


class BankSettings(BaseModel):
    """The sections of config.yaml the bank reads; it documents each key."""

    model_config = ConfigDict(extra="forbid")

    database_url: str
    demo_data: bool
    demo_mode: bool
    demo_credentials: Literal["random", "published"]
    sessions: StoreSettings
    lockout: LockoutSettings
    limits: LimitSettings
    idempotency: IdempotencySettings
    auth: AuthSettings
    webhooks: WebhookSettings
    fraud: FraudSettings

    def anchor_paths(self, root: Path) -> None:
        """Relative file paths (a SQLite database, the secret file) are taken from `root`,
        the project, not from the current directory."""
        self.database_url = anchor_sqlite_path(self.database_url, root)
        self.auth.jwt_secret_file = str(root / self.auth.jwt_secret_file)


class TransferPolicy(Protocol):
    """What the bank reads of the assistant's settings: one local time zone and one
    transfer ceiling for every channel."""

    timezone: str
    max_transfer_rupees: int


@dataclass(frozen=True)
class Bank:
    engine: Engine
    store: KeyValueStore  # sessions, request/transfer limits and lockout counters
    events: Events
    ledger: Ledger
    directory: Directory
    users: Users
    logins: Logins  # login and registration under their limits
    tokens: Tokens
    statements: Statements
    notifications: Notifications
    fraud: FraudMonitor
    audit: AuditLog
    limits: Limits
    guard: PasswordGuard
    teller: Teller
    idempotency: IdempotencyStore
    support: SupportDesk
    webhooks: Subscriptions
    dispatcher: Dispatcher
    webhook_settings: WebhookSettings
    zone: ZoneInfo  # the bank's local time: statements' periods, fraud's night hours
    max_transfer_paise: int  # the most one transfer may move
    demo_mode: bool  # requests without a token act for the user they name (seeds/001)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The webhook deliveries run meanwhile; then the store and the database close."""
        async with self.dispatcher.running():
            yield
        self.store.close()
        self.engine.dispose()


def prepare_database(settings: BankSettings, demo_users: Path) -> None:
    """Tables, the demo users (if `demo_data`) and the token secret, made once before N
    workers start: on SQLite, workers creating them at once would wait on each other's
    write lock (seeding hashes passwords inside it) past the driver's 5-s timeout."""
    signing_secret(settings.auth)
    engine = open_engine(settings.database_url)
    if settings.demo_data:
        seed_demo_data(engine, demo_users)
    engine.dispose()


def open_bank(settings: BankSettings, policy: TransferPolicy, demo_users: Path) -> Bank:
    """The bank on its database, with the demo users of `demo_users` if `demo_data` is on.

    Raises banking.auth.SecretError first, before anything is opened, and
    banking.db.DatabaseUnavailable when the database cannot be reached or does not exist.
    """
    secret = signing_secret(settings.auth)
    zone = ZoneInfo(policy.timezone)
    engine = open_engine(settings.database_url)
    if settings.demo_data:
        published = settings.demo_mode or settings.demo_credentials == "published"
        seed_demo_data(engine, demo_users, published=published)
    # One event stream: the ledger and the teller write to it; notifications and the
    # webhook outbox listen, inside the event's transaction.
    events = Events(engine)
    notifications = Notifications(engine)
    events.subscribe(notifications.on_event)
    events.subscribe(queue_deliveries)
    ledger, directory = Ledger(engine, events), Directory(engine)
    store = make_store(settings.sessions)
    guard = PasswordGuard(store, directory, settings.lockout)
    limits = Limits(store, settings.limits)
    audit = AuditLog(engine)
    users = Users(engine)
    fraud = FraudMonitor(engine, events, settings.fraud, zone)
    return Bank(
        engine=engine,
        store=store,
        events=events,
        ledger=ledger,
        directory=directory,
        users=users,
        logins=Logins(users, store, settings.lockout, limits),
        tokens=Tokens(engine, secret, settings.auth),
        statements=Statements(engine),
        notifications=notifications,
        fraud=fraud,
        audit=audit,
        limits=limits,
        guard=guard,
        teller=Teller(ledger, guard, limits, audit, fraud),
        idempotency=IdempotencyStore(engine, settings.idempotency.lease_s),
        support=SupportDesk(engine),
        webhooks=Subscriptions(engine, settings.webhooks.max_subscriptions_per_user),
        dispatcher=Dispatcher(engine, settings.webhooks),
        webhook_settings=settings.webhooks,
        zone=zone,
        max_transfer_paise=rupees_to_paise(policy.max_transfer_rupees),
        demo_mode=settings.demo_mode,
    )
