"""Engine creation: SQLite with real write locks, or PostgreSQL; what a lost database raises."""

import sqlite3
from pathlib import Path

from sqlalchemy import Connection, Engine, event, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import SQLModel, create_engine, text

# Importing the models registers their tables on SQLModel.metadata.
from banking import audit, models  # noqa: F401
from banking.config import ConfigError

SQLITE_BUSY_TIMEOUT_MS = 30_000
WRITE_LOCK_OPTION = "bankbot_write_lock"
# Key of the PostgreSQL advisory lock held while the tables are created.
SCHEMA_LOCK = 0x62616E6B626F74  # "bankbot"
# What a query raises while the database is unreachable (stopped, restarting, the network
# gone) or the pool has no connection to give: every channel answers "try again shortly"
# (HTTP: 503 with Retry-After, banking/api/errors.py), never a server error.
DATABASE_UNREACHABLE = (OperationalError, InterfaceError, PoolTimeout)
DATABASE_RETRY_S = 5  # the Retry-After of that answer: about a PostgreSQL restart
CONNECT_TIMEOUT_S = 5  # a host that does not answer fails this fast instead of hanging


class DatabaseUnavailable(ConfigError):
    """The configured database cannot be used at start: the one-line message says why and
    what to do (a ConfigError: the server stops with it)."""


def open_engine(database_url: str) -> Engine:
    """`make_engine`, its failure to connect turned into DatabaseUnavailable."""
    url = make_url(database_url)
    try:
        return make_engine(database_url)
    except OperationalError as error:
        raise DatabaseUnavailable(_why(url, str(error.orig))) from error


def _why(url: URL, detail: str) -> str:
    where = url.render_as_string(hide_password=True)
    if url.get_backend_name() != "postgresql":
        return f"cannot open the database {where}: {detail.splitlines()[0]}"
    host, port, name = url.host or "localhost", url.port or 5432, url.database
    if f'database "{name}" does not exist' in detail:
        return (
            f"database {name!r} does not exist on {host}:{port}; create it "
            f"(createdb -h {host} -p {port} -U {url.username or 'postgres'} {name}) "
            "or point DATABASE_URL at another"
        )
    reason = detail.splitlines()[0].rsplit("failed: ", 1)[-1].strip()
    return (
        f"cannot reach PostgreSQL at {where} ({reason}); start it (`make postgres` for "
        "the local one) or set DATABASE_URL"
    )


def make_engine(database_url: str) -> Engine:
    """Create the engine and its tables.

    Statement parameters (names, descriptions) are kept out of error messages, so that a
    logged database error carries no personal data.

    On SQLite the driver's own transaction handling is switched off so that a write
    transaction can start with BEGIN IMMEDIATE (taking the write lock before reading);
    see `writing()`.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        # pre-ping: a connection that died with a database restart is replaced at checkout.
        engine = create_engine(
            url,
            pool_pre_ping=True,
            pool_size=10,
            max_overflow=20,
            hide_parameters=True,
            connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
        )
        # Several server processes may start at once on an empty database: one creates
        # the tables while the others wait, then find them there.
        with engine.begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
            SQLModel.metadata.create_all(connection)
            _add_missing_columns(connection)
        return engine
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False}, hide_parameters=True)
    _use_sqlite_locking(engine)
    with engine.begin() as connection:
        SQLModel.metadata.create_all(connection)
        _add_missing_columns(connection)
    return engine


def _add_missing_columns(connection: Connection) -> None:
    """Add the nullable columns a newer version declares to the tables of an older database.

    `create_all` creates missing tables but leaves existing ones alone; new columns are
    always nullable, so a database made by an earlier version keeps working with its data.
    """
    inspector = inspect(connection)
    dialect = connection.dialect
    for table in SQLModel.metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            if not column.nullable:
                raise RuntimeError(f"{table.name}.{column.name} is new and not nullable")
            kind = column.type.compile(dialect=dialect)
            connection.exec_driver_sql(
                f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'
            )


def writing(engine: Engine) -> Engine:
    """The same engine, but its transactions take the database write lock at BEGIN on SQLite."""
    return engine.execution_options(**{WRITE_LOCK_OPTION: True})


def _use_sqlite_locking(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(WRITE_LOCK_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
