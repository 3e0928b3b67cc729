"""Real server processes under load and faults: concurrent transfers on two servers, a
server killed with SIGKILL mid-load, and Redis dying mid-run.

Setup gives the demo users large balances and cheap bcrypt hashes (4 rounds instead of
12) of the same password: the real check still runs on every transfer, but 1000 of them
would otherwise cost ~250 s of CPU on their own.
"""

import concurrent.futures
import contextlib
import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import httpx
from sqlalchemy import text
from sqlmodel import Session

from banking import make_engine
from banking.idempotency import transfer_id_for
from banking.refusals import ALREADY_MADE, STORE_UNAVAILABLE
from tests.conftest import NO_LIMITS, REDIS_URL, RULES_ONLY, VOICE_OFF, free_port
from tests.test_server import running_server, wait_for

PASSWORD = "password123"
RICH_PAISE = 100_000_000  # ₹10 lakh each
# Each demo user's contacts (data/demo_users.yaml): alias → user id.
CONTACTS = {
    1: {"ravi": 3, "jane": 2, "john": 5, "mom": 4, "mike": 5},
    2: {"john": 1, "ravi": 3},
    3: {"john": 1, "jane": 2},
    4: {"john": 1},
    5: {"john": 1, "jane": 2},
}
QUIET = {"BANKBOT_LOG_LEVEL": "warning"}  # the servers' output goes to a pipe nobody reads


def prepare_users(database_url: str, balance: int | None = RICH_PAISE) -> None:
    """Cheap password hashes and, unless None, this balance for every demo user."""
    cheap = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    engine = make_engine(database_url)
    with Session(engine) as session, session.begin():
        session.execute(text('UPDATE "user" SET password_hash = :hash'), {"hash": cheap})
        if balance is not None:
            session.execute(text("UPDATE account SET balance = :paise"), {"paise": balance})
    engine.dispose()


def check_ledger(database_url: str, opening_total: int) -> dict[str, int]:
    """The ledger's invariants; returns each transfer id's amount.

    Money is conserved, no balance is negative, every transfer is exactly one debit and one
    credit of the same amount, each account's balance is its opening balance plus its
    entries since, and every transfer has its one audit row.
    """
    engine = make_engine(database_url)
    with Session(engine) as session:
        balances = dict(session.execute(text("SELECT id, balance FROM account")).all())
        assert sum(balances.values()) == opening_total
        assert min(balances.values()) >= 0
        sides = session.execute(
            text(
                "SELECT transfer_id, count(*), sum(CASE WHEN type = 'debit' THEN 1 ELSE 0 END), "
                "min(amount), max(amount) FROM ledgerentry WHERE transfer_id IS NOT NULL "
                "GROUP BY transfer_id"
            )
        ).all()
        assert all((count, debits, low) == (2, 1, high) for _, count, debits, low, high in sides)
        moved = dict(
            session.execute(
                text(
                    "SELECT account_id, sum(CASE WHEN type = 'credit' THEN amount ELSE -amount END)"
                    " FROM ledgerentry WHERE transfer_id IS NOT NULL GROUP BY account_id"
                )
            ).all()
        )
        audited = dict(
            session.execute(
                text(
                    "SELECT transfer_id, count(*) FROM transfer_audit "
                    "WHERE outcome = 'completed' GROUP BY transfer_id"
                )
            ).all()
        )
    engine.dispose()
    amounts = {transfer_id: low for transfer_id, _, _, low, _ in sides}
    assert audited == dict.fromkeys(amounts, 1)
    return {"moved_accounts": len(moved), **amounts}


def total_balance(database_url: str) -> int:
    engine = make_engine(database_url)
    with Session(engine) as session:
        total = session.execute(text("SELECT sum(balance) FROM account")).scalar_one()
    engine.dispose()
    return total


def random_transfer(rng: random.Random) -> dict:
    sender = rng.choice(list(CONTACTS))
    alias = rng.choice(list(CONTACTS[sender]))
    amount = rng.randint(1, 500)
    return {"user_id": sender, "message": f"send {amount} to {alias}", "password": PASSWORD}


@contextlib.contextmanager
def servers(count: int, env: dict[str, str], start_s: float = 30) -> Iterator[list[str]]:
    """`count` real server processes sharing `env`'s database and Redis; their base URLs.
    Each must answer /health within `start_s`."""
    ports = [free_port() for _ in range(count)]
    with contextlib.ExitStack() as stack:
        processes = [
            stack.enter_context(running_server(["--port", str(port)], env)) for port in ports
        ]
        for port, process in zip(ports, processes, strict=True):
            wait_for(f"http://127.0.0.1:{port}/health", process, seconds=start_s)
        yield [f"http://127.0.0.1:{port}" for port in ports]


def test_1000_concurrent_transfers_on_two_servers_keep_the_books(
    postgres_url: str, redis_prefix: str
) -> None:
    env = {
        **RULES_ONLY,
        **VOICE_OFF,
        "BANKBOT_DEMO_MODE": "1",  # requests name their user: tokens are not the point here
        **NO_LIMITS,
        **QUIET,
        "DATABASE_URL": postgres_url,
        "REDIS_URL": REDIS_URL,
        "BANKBOT_SESSIONS__KEY_PREFIX": redis_prefix,
    }
    rng = random.Random(7)
    requests = [random_transfer(rng) for _ in range(1000)]
    with servers(2, env) as bases:
        prepare_users(postgres_url)
        opening = total_balance(postgres_url)
        with httpx.Client(timeout=60, limits=httpx.Limits(max_connections=64)) as http:

            def send(index: int) -> dict:
                response = http.post(f"{bases[index % 2]}/assistant", json=requests[index])
                assert response.status_code == 200, response.text
                return response.json()

            with concurrent.futures.ThreadPoolExecutor(32) as pool:
                replies = list(pool.map(send, range(len(requests))))
    succeeded = [reply for reply in replies if reply["data"]["success"]]
    assert len(succeeded) == 1000, {reply["reply"] for reply in replies} - {
        r["reply"] for r in succeeded
    }
    made = check_ledger(postgres_url, opening)
    assert len(made) - 1 == 1000  # one transfer id each, none twice
    expected = sum(int(request["message"].split()[1]) * 100 for request in requests)
    assert sum(amount for key, amount in made.items() if key != "moved_accounts") == expected


def test_a_server_killed_mid_load_loses_nothing_and_retries_do_not_pay_twice(
    postgres_url: str, redis_prefix: str
) -> None:
    env = {
        **RULES_ONLY,
        **VOICE_OFF,
        "BANKBOT_DEMO_MODE": "1",  # requests name their user: tokens are not the point here
        **NO_LIMITS,
        **QUIET,
        "DATABASE_URL": postgres_url,
        "REDIS_URL": REDIS_URL,
        "BANKBOT_SESSIONS__KEY_PREFIX": redis_prefix,
        "BANKBOT_IDEMPOTENCY__LEASE_S": "5",
    }
    rng = random.Random(9)
    keyed = {f"crash-{index}": random_transfer(rng) for index in range(300)}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    answered: dict[str, tuple[int, dict]] = {}
    with running_server(["--port", str(port)], env) as process:
        wait_for(f"{base}/health", process)
        prepare_users(postgres_url)
        opening = total_balance(postgres_url)
        with httpx.Client(timeout=30) as http:

            def send(key: str) -> None:
                try:
                    response = http.post(
                        f"{base}/assistant", json=keyed[key], headers={"Idempotency-Key": key}
                    )
                except httpx.TransportError:
                    return  # the server died under this request: retried below
                answered[key] = (response.status_code, response.json())

            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                futures = [pool.submit(send, key) for key in keyed]
                while len(answered) < 60:
                    time.sleep(0.01)
                process.kill()  # SIGKILL: no shutdown, mid-transfer
                concurrent.futures.wait(futures)
    assert 60 <= len(answered) < len(keyed), "the kill should land mid-load"

    with running_server(["--port", str(port)], env) as process, httpx.Client(timeout=30) as http:
        wait_for(f"{base}/health", process)
        retried: dict[str, tuple[int, dict]] = {}
        for key, request in keyed.items():
            while True:
                response = http.post(
                    f"{base}/assistant", json=request, headers={"Idempotency-Key": key}
                )
                if response.status_code != 409:  # the dead server's claim, until its lease ends
                    break
                time.sleep(float(response.headers["Retry-After"]))
            retried[key] = (response.status_code, response.json())
    for key, first in answered.items():
        assert retried[key] == first, key  # a retry returns the first answer
    replies = {body["reply"] for _, body in retried.values()}
    assert all(
        reply.startswith("Successfully transferred") or reply == ALREADY_MADE for reply in replies
    )

    made = check_ledger(postgres_url, opening)
    # Every key made exactly one transfer, under the id derived from it, of its amount.
    for key, request in keyed.items():
        transfer_id = transfer_id_for(request["user_id"], key)
        assert made[transfer_id] == int(request["message"].split()[1]) * 100
    assert len(made) - 1 == len(keyed)


@contextlib.contextmanager
def private_redis(port: int) -> Iterator[subprocess.Popen]:
    """A redis-server of this test's own (never the shared one), keeping nothing on disk."""
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while (
            subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout
            != b"PONG\n"
        ):
            assert time.monotonic() < deadline, "private redis-server did not start"
            time.sleep(0.05)
        yield process
    finally:
        process.kill()
        process.wait()


def test_redis_dying_mid_run_is_reported_and_keeps_money_safe(tmp_path: Path) -> None:
    redis_port, port = free_port(), free_port()
    database_url = f"sqlite:///{tmp_path / 'bank.db'}"
    env = {
        **RULES_ONLY,
        **VOICE_OFF,
        "BANKBOT_DEMO_MODE": "1",  # requests name their user: tokens are not the point here
        **NO_LIMITS,
        **QUIET,
        "DATABASE_URL": database_url,
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
    }
    base = f"http://127.0.0.1:{port}"
    transfer = {"user_id": 1, "message": "send 500 to ravi", "password": PASSWORD}
    conversation = {"user_id": 1, "session_id": "during-outage", "message": "send 200 to mom"}
    with (
        running_server(["--port", str(port)], env) as process,
        httpx.Client(base_url=base, timeout=30) as http,
    ):

        def balance() -> httpx.Response:
            return http.post("/assistant", json={"user_id": 1, "message": "my balance"})

        with private_redis(redis_port):
            wait_for(f"{base}/health", process)
            assert http.get("/health").json()["status"] == "healthy"
            assert http.post("/assistant", json=transfer).json()["data"]["success"] is True
            asked = http.post("/assistant", json=conversation).json()
            assert asked["data"]["require_password"] is True
        # Redis is gone (SIGKILL), in the middle of a conversation.
        health = http.get("/health").json()
        assert health["status"] == "degraded"
        assert health["degraded"] == {"sessions": "unavailable"}
        refused = http.post("/assistant", json=transfer).json()
        assert refused["reply"] == STORE_UNAVAILABLE
        confirm = {**conversation, "message": "yes", "password": PASSWORD}
        assert http.post("/assistant", json=confirm).json()["reply"] == STORE_UNAVAILABLE
        chat = {"user_id": 1, "message": "send 100 to jane", "password": PASSWORD}
        assert http.post("/api/ai/chat", json=chat).json()["response"] == STORE_UNAVAILABLE
        # Balance questions still work (not rate-limited while the counters are away).
        answer = balance()
        assert answer.json()["reply"] == "Your current account balance is ₹9500"
        assert "X-RateLimit-Limit" not in answer.headers
        history = http.post(
            "/assistant", json={"user_id": 1, "message": "show last 1 transactions"}
        )
        assert history.json()["data"]["transactions"][0]["description"] == "Sent ₹500 to Ravi"

        # Redis back (empty): the service recovers by itself.
        with private_redis(redis_port):
            assert http.get("/health").json()["status"] == "healthy"
            assert http.post("/assistant", json=transfer).json()["data"]["success"] is True
            assert balance().json()["reply"] == "Your current account balance is ₹9000"
    engine = make_engine(database_url)
    with Session(engine) as session:
        reasons = session.execute(
            text("SELECT channel, outcome, reason FROM transfer_audit ORDER BY id")
        ).all()
    engine.dispose()
    assert [tuple(row) for row in reasons] == [
        ("assistant", "completed", None),
        ("assistant", "refused", "store_unavailable"),
        ("assistant", "completed", None),
    ]
