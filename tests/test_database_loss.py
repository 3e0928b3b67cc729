"""The database going away: a private PostgreSQL (Debian's initdb and pg_ctl, on a free port)
stopped and started again under keyed transfer load, and a server started against a
database it cannot use.

While the database is away every route answers seeds/002's 503 with Retry-After, and a
typed chat turn and a voice session's turn say they cannot reach the bank; afterwards the
pool recovers by itself. Money is
conserved and no Idempotency-Key is paid twice.
"""

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from banking.db import DATABASE_RETRY_S
from banking.idempotency import transfer_id_for
from banking.refusals import ALREADY_MADE, BANK_UNREACHABLE
from tests.conftest import (
    NO_LIMITS,
    POSTGRES_ADMIN_URL,
    REDIS_URL,
    RULES_ONLY,
    VOICE_OFF,
    free_port,
)
from tests.test_faults import check_ledger, prepare_users, random_transfer, total_balance
from tests.test_server import ROOT, bearer_of, running_server, wait_for

# Debian's PostgreSQL programs, newest version first (the postgresql package installs them).
PG_BINS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
UNREACHABLE = {
    "status": "error",
    "error_code": "SERVICE_UNAVAILABLE",
    "message": BANK_UNREACHABLE,
    "retry_after": DATABASE_RETRY_S,
}
OUTAGE_S = 3.0


@dataclass
class PrivatePostgres:
    """A PostgreSQL server of this test's own. initdb refuses to run as root, so as root
    the cluster belongs to the `postgres` system user, as Debian's own does."""

    directory: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/bankbot"

    def run(self, program: str, *arguments: str) -> None:
        command = [str(PG_BINS[-1] / program), *arguments]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
        data, log = str(self.directory / "data"), str(self.directory / "log")
        self.run("pg_ctl", "-D", data, "-l", log, "-w", "-o", f"{options} -c fsync=off", "start")

    def stop(self) -> None:
        """As a crash: in-flight transactions are cut off and rolled back at the next start."""
        self.run("pg_ctl", "-D", str(self.directory / "data"), "-w", "-m", "immediate", "stop")


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    assert PG_BINS, "Debian's PostgreSQL server programs are missing: apt-get install postgresql"
    directory = Path(tempfile.mkdtemp(prefix="bankbot-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
    server = PrivatePostgres(directory, free_port())
    try:
        server.run("initdb", "-D", str(directory / "data"), "-U", "postgres", "--auth=trust")
        server.start()
        admin = f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres"
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute("CREATE DATABASE bankbot")
        yield server
    finally:
        with_server = (directory / "data" / "postmaster.pid").exists()
        if with_server:
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def drain(process: subprocess.Popen) -> list[str]:
    """The server's output, read as it comes (a full pipe would stall the server)."""
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()
    return lines


def test_a_database_restart_under_keyed_load_answers_503_and_pays_each_key_at_most_once(
    redis_prefix: str,
) -> None:
    with private_postgres() as database:
        env = {
            **RULES_ONLY,
            **VOICE_OFF,
            **NO_LIMITS,
            "BANKBOT_DEMO_MODE": "1",  # the load names its users; the account route has tokens
            "BANKBOT_LOG_LEVEL": "warning",
            "DATABASE_URL": database.url,
            "REDIS_URL": REDIS_URL,
            "BANKBOT_SESSIONS__KEY_PREFIX": redis_prefix,
            "BANKBOT_IDEMPOTENCY__LEASE_S": "3",
            "BANKBOT_VOICE__ENABLED": "true",  # a typed turn on /ws/voice: a spoken reply
        }
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with running_server(["--port", str(port)], env) as process:
            log = drain(process)
            wait_for(f"{base}/health", process, seconds=120)  # the speech models load first
            prepare_users(database.url)
            opening = total_balance(database.url)
            load = _load(base)
            keyed, answers = load.keyed, load.answers
            with httpx.Client(base_url=base, timeout=30) as http:
                token = bearer_of(base)
                chat_url = f"ws://127.0.0.1:{port}/api/ai/chat/ws?user_id=1"
                voice_url = f"ws://127.0.0.1:{port}/ws/voice?user_id=1"
                with connect(chat_url) as chat_socket, connect(voice_url) as voice_socket:
                    _until_open(chat_socket, voice_socket)
                    while len(answers) < 40:
                        time.sleep(0.05)
                    database.stop()
                    down_at = time.monotonic()
                    # Every kind of route, and the typed chat, while the database is away.
                    probes = [
                        http.post("/assistant", json={"user_id": 1, "message": "my balance"}),
                        http.get("/api/v1/accounts/1", headers=token),
                        http.post("/api/ai/chat", json={"user_id": 1, "message": "hi"}),
                        http.get("/api/transactions/", headers=token),
                    ]
                    chat_socket.send(json.dumps({"type": "chat", "message": "send 5 to jane"}))
                    said = _chat_reply(chat_socket)
                    voice_socket.send(json.dumps({"type": "text", "text": "my balance"}))
                    spoken = _voice_reply(voice_socket)
                    opened = [_refused_at_open(url) for url in (chat_url, voice_url)]
                    time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
                    database.start()
                    # The pool recovers by itself: no restart of the server.
                    assert _answers_again(http), "balance questions still fail after the restart"
                    chat_socket.send(json.dumps({"type": "chat", "message": "my balance"}))
                    assert _chat_reply(chat_socket).startswith("Your current account balance")
                time.sleep(1.0)
                load.finish()
                settled = _settle(http, keyed, answers)
            assert process.poll() is None, "the server died"
        output = "".join(log)
        made = check_ledger(database.url, opening)  # while the private server is still up

    statuses = [status for status, _, _ in answers.values()]
    assert 500 not in statuses
    for response in probes:
        assert response.status_code == 503, response.text
        assert response.json() == UNREACHABLE
        assert response.headers["Retry-After"] == str(DATABASE_RETRY_S)
    assert said == BANK_UNREACHABLE
    assert spoken == BANK_UNREACHABLE
    assert opened == [(BANK_UNREACHABLE, 1013)] * 2  # "try again later", not a server error
    unreachable = [body for status, body, _ in answers.values() if status == 503]
    assert unreachable, "no keyed transfer was refused while the database was away"
    assert all(body == UNREACHABLE for body in unreachable)
    assert "Traceback" not in output
    assert '"event": "database_unreachable"' in output  # one line per refused request

    # Each key settled once: its transfer made exactly once, under the id derived from it.
    replies = {body["reply"] for body in settled.values()}
    assert all(r.startswith("Successfully transferred") or r == ALREADY_MADE for r in replies)
    for key, request in keyed.items():
        transfer_id = transfer_id_for(request["user_id"], key)
        assert made[transfer_id] == int(request["message"].split()[1]) * 100, key
    assert len(made) - 1 == len(keyed)
    print(f"{len(keyed)} keys, {len(unreachable)} answered 503 during the outage, all paid once")


@dataclass
class Load:
    """Each key's request and its first answer (status, body, Retry-After); no answer if the
    connection failed."""

    keyed: dict[str, dict]
    answers: dict[str, tuple]
    stop: threading.Event
    clients: list[threading.Thread]

    def finish(self) -> None:
        self.stop.set()
        for thread in self.clients:
            thread.join(timeout=60)


def _load(base: str) -> Load:
    """Four clients sending keyed transfers until told to stop."""
    rng = random.Random(18)
    keyed: dict[str, dict] = {}
    answers: dict[str, tuple] = {}
    stop = threading.Event()
    lock = threading.Lock()

    def client(number: int) -> None:
        with httpx.Client(base_url=base, timeout=30) as http:
            for index in range(10_000):
                if stop.is_set():
                    return
                key = f"loss-{number}-{index}"
                with lock:
                    keyed[key] = request = random_transfer(rng)
                try:
                    response = http.post(
                        "/assistant", json=request, headers={"Idempotency-Key": key}
                    )
                except httpx.TransportError:
                    continue  # retried when settling
                answers[key] = (
                    response.status_code,
                    response.json(),
                    response.headers.get("Retry-After"),
                )
                if response.status_code == 503:  # as a polite client: not in a tight loop
                    time.sleep(0.5)

    clients = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(4)]
    for thread in clients:
        thread.start()
    return Load(keyed, answers, stop, clients)


def _chat_reply(chat_socket) -> str:
    words = []
    while (event := json.loads(chat_socket.recv(timeout=30)))["type"] != "chat_end":
        if event["type"] == "chat_chunk":
            words.append(event["content"])
        assert event["type"] in ("chat_start", "chat_chunk"), event
    return "".join(words)


def _until_open(chat_socket, voice_socket) -> None:
    """Both sockets past their opening lookups (the user, the contacts), which read the
    database: the outage is meant to come in the middle of conversations."""
    chat_socket.send(json.dumps({"type": "ping"}))
    assert json.loads(chat_socket.recv(timeout=30))["type"] == "pong"
    assert json.loads(voice_socket.recv(timeout=30))["type"] == "ready"


def _refused_at_open(url: str) -> tuple[str, int | None]:
    """A socket opened while the database is away: what it is told, and its close code."""
    with connect(url) as socket:
        told = json.loads(socket.recv(timeout=30))
        with pytest.raises(ConnectionClosed):
            socket.recv(timeout=10)
    return told["message"], socket.close_code


def _voice_reply(voice_socket) -> str:
    """The reply event's text; the audio that follows is not waited for."""
    while True:
        frame = voice_socket.recv(timeout=60)
        if isinstance(frame, str) and (event := json.loads(frame))["type"] == "reply":
            return event["reply"]
        assert isinstance(frame, bytes) or event["type"] != "error", event


def _answers_again(http: httpx.Client, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        answer = http.post("/assistant", json={"user_id": 1, "message": "my balance"})
        if answer.status_code == 200:
            return True
        assert answer.status_code == 503, answer.text
        time.sleep(0.2)
    return False


def _settle(http: httpx.Client, keyed: dict[str, dict], answers: dict[str, tuple]) -> dict:
    """Each key's final answer: its request sent again, as a client would after a 503, a
    lost connection or another request's claim (409), until the bank answers it."""
    settled = {}
    for key, request in keyed.items():
        status, body, _ = answers.get(key, (None, None, None))
        deadline = time.monotonic() + 30
        while status != 200:
            assert time.monotonic() < deadline, f"{key} never settled: {status} {body}"
            response = http.post("/assistant", json=request, headers={"Idempotency-Key": key})
            status, body = response.status_code, response.json()
            assert status in (200, 409, 503), body
            if status != 200:
                time.sleep(float(response.headers["Retry-After"]) / 5)
        settled[key] = body
    return settled


@pytest.mark.parametrize(
    ("database_url", "said"),
    [
        # Nothing listens on this port: PostgreSQL is down.
        ("postgresql+psycopg://postgres@127.0.0.1:{free}/bankbot", "cannot reach PostgreSQL"),
        # The server answers, the database is not there.
        (
            make_url(POSTGRES_ADMIN_URL)
            .set(database="bankbot_never_created")
            .render_as_string(hide_password=False),
            "database 'bankbot_never_created' does not exist",
        ),
    ],
)
def test_a_database_it_cannot_use_stops_the_server_in_one_line(
    database_url: str, said: str
) -> None:
    result = start(DATABASE_URL=database_url.format(free=free_port()))
    assert result.returncode != 0
    assert result.stderr.startswith(f"bankbot: {said}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "DATABASE_URL" in result.stderr


def start(**environ: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "server.py", "--host", "127.0.0.1"],
        cwd=ROOT,
        env={**os.environ, **RULES_ONLY, **VOICE_OFF, **environ},
        capture_output=True,
        text=True,
        timeout=60,
    )
