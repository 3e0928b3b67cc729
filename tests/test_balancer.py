"""Three server processes behind Debian's nginx, running the shipped deploy/nginx.conf.

The processes share PostgreSQL and Redis and nothing else; each has its own port. NLU is
the rules stage alone (three Rasa and LLM copies would cost ~6 GB and minutes; a shared
Rasa and LLM server are tested in tests/nlu/); the voice models are loaded in each
process, since a voice conversation's turns go to different processes. Through the
balancer: a voice conversation continued on a second process, twelve typed conversations
while one process is killed with SIGKILL, the request limit and the password lockout
counted across processes, and every transfer's webhook delivered. Clients retry a request
the balancer could not complete (502 when its process died mid-request, 409 while the
dead process's Idempotency-Key lease runs out) with the same key, as a real client would.
"""

import concurrent.futures
import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import Session

from banking import make_engine
from banking.refusals import ALREADY_MADE, WRONG_PASSWORD
from tests.balancer import nginx_binary, running_nginx, upstream
from tests.banking.webhooks.receiver import Receiver, receiving
from tests.conftest import REDIS_URL, RULES_ONLY, free_port
from tests.test_faults import PASSWORD, QUIET, check_ledger, prepare_users, total_balance
from tests.test_server import running_server, wait_for
from tests.voice.spoken import cached_spoken_wav
from tests.voice.voice_client import VoiceClient

pytestmark = pytest.mark.skipif(
    nginx_binary() is None, reason="nginx is not installed: `make test-packages` installs it"
)

REQUEST_LIMIT = 60  # per user, across every process
ATTEMPTS = 5  # wrong passwords before the lockout (config.yaml's lockout.attempts)
CONVERSATIONS = 12
KILL_AFTER = 4  # conversations finished before one process is killed
RETRIED = {409, 502, 503, 504}
SENDER, ALIASES = 1, ("ravi", "jane", "john", "mom")
RETRY_REPLIES = (ALREADY_MADE, "There is nothing waiting for your confirmation.")


def environment(database_url: str, redis_prefix: str) -> dict[str, str]:
    return {
        **RULES_ONLY,
        **QUIET,
        "BANKBOT_DEMO_MODE": "1",  # requests name their user: tokens are tested elsewhere
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "BANKBOT_SESSIONS__KEY_PREFIX": redis_prefix,
        "BANKBOT_AUTH__JWT_SECRET": "a-secret-every-process-behind-the-balancer-shares",
        "BANKBOT_LIMITS__REQUESTS": str(REQUEST_LIMIT),
        "BANKBOT_LIMITS__REQUESTS_WINDOW_S": "86400",
        "BANKBOT_LIMITS__TRANSFERS": "1000000",
        "BANKBOT_IDEMPOTENCY__LEASE_S": "3",
        "BANKBOT_WEBHOOKS__ALLOWED_PRIVATE_HOSTS": "[127.0.0.1]",
        "BANKBOT_WEBHOOKS__POLL_INTERVAL_S": "0.2",
        "BANKBOT_WEBHOOKS__LEASE_S": "8",
        "BANKBOT_VOICE__TTS__PREWARM": "[]",
    }


@contextlib.contextmanager
def cluster(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, list]]:
    """Three server processes and nginx in front; the balancer's URL and the processes."""
    ports = [free_port() for _ in range(3)]
    with contextlib.ExitStack() as stack:
        processes = [stack.enter_context(running_server(["--port", str(p)], env)) for p in ports]
        for port, process in zip(ports, processes, strict=True):
            wait_for(f"http://127.0.0.1:{port}/health", process, seconds=120)
        base = stack.enter_context(running_nginx(tmp_path / "nginx", free_port(), ports))
        yield base, processes


def delivered(hooks: Receiver) -> set[str]:
    """The distinct event ids the webhook receiver got."""
    with hooks.lock:
        headers = [{k.lower(): v for k, v in r.headers.items()} for r in hooks.requests]
    return {header["x-webhook-event-id"] for header in headers}


def post(http: httpx.Client, path: str, body: dict) -> httpx.Response:
    """POST through the balancer; what it could not complete is sent again, same key."""
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(httpx.TransportError):
            response = http.post(path, json=body, headers=headers)
            if response.status_code not in RETRIED:
                return response
        assert time.monotonic() < deadline, f"{path} kept failing"
        time.sleep(0.5)


def conversation(http: httpx.Client, number: int) -> tuple[list[str], str]:
    """A transfer of its own amount over two turns; where they landed, and the last reply."""
    session, amount = f"balanced-{number}", 101 + number
    message = f"send {amount} to {ALIASES[number % len(ALIASES)]}"
    turn = {"user_id": SENDER, "message": message, "session_id": session}
    asked = post(http, "/assistant", turn)
    assert asked.json()["data"]["require_password"] is True, asked.text
    done = post(http, "/assistant", {**turn, "message": "confirm", "password": PASSWORD})
    assert done.status_code == 200, done.text
    return [upstream(asked), upstream(done)], done.json()["reply"]


def transfers_of(database_url: str, sender_account: int) -> list[int]:
    """The amounts (paise) of the sender's transfers in the ledger."""
    engine = make_engine(database_url)
    with Session(engine) as session:
        rows = session.execute(
            text(
                "SELECT amount FROM ledgerentry WHERE account_id = :account AND type = 'debit' "
                "AND transfer_id IS NOT NULL"
            ),
            {"account": sender_account},
        ).all()
    engine.dispose()
    return sorted(amount for (amount,) in rows)


def account_of(database_url: str, user_id: int) -> tuple[int, int]:
    """The user's account id and balance (paise)."""
    engine = make_engine(database_url)
    with Session(engine) as session:
        row = session.execute(
            text("SELECT id, balance FROM account WHERE user_id = :user"), {"user": user_id}
        ).one()
    engine.dispose()
    return row[0], row[1]


def test_three_processes_behind_nginx(postgres_url: str, redis_prefix: str, tmp_path: Path) -> None:
    env = environment(postgres_url, redis_prefix)
    with cluster(env, tmp_path) as (base, processes), receiving() as hooks:
        prepare_users(postgres_url)
        opening = total_balance(postgres_url)
        with httpx.Client(base_url=base, timeout=60) as http:
            login = http.post(
                "/api/auth/login", data={"username": "john@example.com", "password": PASSWORD}
            )
            token = login.json()["access_token"]
            subscribed = http.post(
                "/api/v1/webhooks",
                json={"url": hooks.url, "events": ["transaction.completed"]},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert subscribed.status_code == 201, subscribed.text
            sender_account, _ = account_of(postgres_url, SENDER)

            # A voice conversation: the spoken request on one process, the password on another.
            socket = base.replace("http", "ws") + f"/ws/voice?user_id={SENDER}"
            with VoiceClient(socket) as first:
                session = first.until("ready")["session_id"]
                first.say(cached_spoken_wav("send five hundred rupees to Ravi", "en-us", 150, 50))
                asked = first.until("reply", timeout=90)
                heard_on = first.socket.response.headers["x-upstream"]
            assert asked["data"]["require_password"] is True, asked["reply"]
            for _ in range(6):  # round robin: another process within a few connections
                with VoiceClient(f"{socket}&session_id={session}") as second:
                    second.until("ready")
                    if second.socket.response.headers["x-upstream"] == heard_on:
                        continue
                    second.send({"type": "password", "password": PASSWORD})
                    confirmed = second.until("reply", timeout=90)
                    break
            else:
                pytest.fail("every voice socket landed on the same process")
            assert confirmed["reply"].startswith("Successfully transferred 500 rupees to Ravi.")

            # Typed conversations; one process is killed with SIGKILL after the first few.
            finished = threading.Semaphore(0)
            killed = processes[0]

            def kill_midway() -> None:
                for _ in range(KILL_AFTER):
                    finished.acquire()
                killed.kill()

            def run(number: int) -> tuple[list[str], str]:
                try:
                    return conversation(http, number)
                finally:
                    finished.release()

            killer = threading.Thread(target=kill_midway)
            killer.start()
            with concurrent.futures.ThreadPoolExecutor(3) as pool:
                results = list(pool.map(run, range(CONVERSATIONS)))
            killer.join()
            assert killed.poll() is not None
            landed = [places for places, _ in results]
            assert any(len(set(places)) == 2 for places in landed)  # turns on two processes
            assert len({place for places in landed for place in places}) == 3
            # A confirmation whose answer was lost with its process is retried: the retry is
            # told the transfer was made, or that nothing waits any more.
            for _, reply in results:
                assert reply.startswith(("Successfully transferred", *RETRY_REPLIES)), reply

            # Each confirmed transfer moved money once: one debit of each amount.
            expected = sorted([500_00] + [(101 + n) * 100 for n in range(CONVERSATIONS)])
            assert transfers_of(postgres_url, sender_account) == expected
            check_ledger(postgres_url, opening)

            # The request limit holds across the two processes left.
            answered, places = [], set()
            for _ in range(REQUEST_LIMIT + 1):
                response = post(http, "/assistant", {"user_id": 5, "message": "check my balance"})
                answered.append(response.status_code)
                places.add(upstream(response))
            assert answered == [200] * REQUEST_LIMIT + [429]
            assert len(places) == 2

            # So does the password lockout: wrong passwords on both, then the right one refused.
            before = account_of(postgres_url, 4)
            wrong = {"user_id": 4, "message": "send 100 to john", "password": "wrong"}
            refusals = [post(http, "/assistant", wrong) for _ in range(ATTEMPTS)]
            assert [r.json()["reply"] for r in refusals[:-1]] == [WRONG_PASSWORD] * (ATTEMPTS - 1)
            assert len({upstream(r) for r in refusals}) == 2
            right = post(http, "/assistant", {**wrong, "password": PASSWORD})
            assert "locked" in right.json()["reply"], right.text
            assert account_of(postgres_url, 4) == before

        # Every transfer's webhook arrives, at least once, under one event id each.
        deadline = time.monotonic() + 30
        while len(event_ids := delivered(hooks)) < len(expected):
            assert time.monotonic() < deadline, f"{len(event_ids)} of {len(expected)} webhooks"
            time.sleep(0.2)
        assert len(event_ids) == len(expected)
