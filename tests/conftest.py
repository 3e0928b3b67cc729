"""Shared fixtures: settings, a SQLite and a PostgreSQL database, and the real app."""

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import redis
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from banking import make_engine
from server import Settings, create_app, load_settings

# The PostgreSQL server the suite creates its own database in (CI starts it).
POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


# The Redis server the suite keeps sessions in (CI starts it); each test uses its own prefix.
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

RULES_ONLY = {"BANKBOT_NLU__BACKENDS": "[rules]"}
# The speech models take seconds to load: apps of tests that do not speak go without them.
VOICE_OFF = {"BANKBOT_VOICE__ENABLED": "false"}
# Tests that are not about the per-user limits raise them far out of reach (many tests ask
# for user 1's balance dozens of times); tests/banking/test_limits.py tests the real ones.
NO_LIMITS = {
    "BANKBOT_LIMITS__REQUESTS": "1000000",
    "BANKBOT_LIMITS__TRANSFERS": "1000000",
    "BANKBOT_LIMITS__LOGINS": "1000000",
    "BANKBOT_LIMITS__REGISTRATIONS": "1000000",
}
# The suite's apps and server processes give the demo users the published password and PIN
# although demo mode is off (config.yaml's default gives them random ones outside demo
# mode; tests/banking/test_demo_credentials.py tests that default).
PUBLISHED_DEMO_CREDENTIALS = {"BANKBOT_DEMO_CREDENTIALS": "published"}
os.environ.update(PUBLISHED_DEMO_CREDENTIALS)


def fresh_window(window_s: int = 60, margin_s: float = 8) -> None:
    """Wait for a new limit window (banking/limits.py: aligned to the clock) when this one
    ends too soon for the test to finish inside it."""
    left = window_s - time.time() % window_s
    if left < margin_s:
        time.sleep(left + 0.1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """The app on a real socket (uvicorn in a thread), its base URL, until the block ends."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=asyncio.run, args=(server.serve(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start in 60 s"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def settings_for(database_url: str, **environ: str) -> Settings:
    """config.yaml with this database and these BANKBOT_* overrides only.

    Unless told otherwise the NLU is the rules stage alone: the contract's examples are all
    read by it, and each app would otherwise start its own Rasa and LLM
    (tests/nlu/test_cascade.py runs the whole cascade); and the per-user limits are
    out of reach (NO_LIMITS). The voice channel is off unless
    asked for (BANKBOT_VOICE__ENABLED="true").
    """
    return load_settings(
        environ={
            "DATABASE_URL": database_url,
            **RULES_ONLY,
            **NO_LIMITS,
            **VOICE_OFF,
            **PUBLISHED_DEMO_CREDENTIALS,
            **environ,
        }
    )


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'bank.db'}"


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of its own on the PostgreSQL server, dropped at the end."""
    admin = make_url(POSTGRES_ADMIN_URL)
    name = f"bankbot_test_{uuid.uuid4().hex[:12]}"
    conninfo = admin.set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """The PostgreSQL test database, emptied for this test."""
    engine = make_engine(postgres_database)
    SQLModel.metadata.drop_all(engine)
    engine.dispose()
    return postgres_database


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Runs the test once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own on the Redis server; its keys are removed afterwards."""
    prefix = f"bankbot-test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    connection = redis.Redis.from_url(REDIS_URL)
    keys = list(connection.scan_iter(f"{prefix}*"))
    if keys:
        connection.delete(*keys)
    connection.close()


@pytest.fixture
def client(sqlite_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(sqlite_url))) as test_client:
        yield test_client


@pytest.fixture
def demo_client(sqlite_url: str) -> Iterator[TestClient]:
    """The real app in demo mode: requests without a token act for the user_id they name."""
    with TestClient(create_app(settings_for(sqlite_url, BANKBOT_DEMO_MODE="1"))) as test_client:
        yield test_client


def bearer(client: TestClient, user_id: int) -> dict[str, str]:
    """An Authorization header with a new access token from the app's own token service.

    Logging in would give the same token but costs a bcrypt check (~0.25 s);
    tests/banking/api/test_auth.py tests the login itself.
    """
    token = client.app.state.services.bank.tokens.issue(user_id).access_token
    return {"Authorization": f"Bearer {token}"}


def logged_in(client: TestClient, user_id: int = 1) -> TestClient:
    """The client, its requests from now on carrying the user's access token."""
    client.headers.update(bearer(client, user_id))
    return client
