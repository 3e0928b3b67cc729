"""Throughput and latency of the text API, measured against the real server.

Starts `server.py` (default settings: the whole NLU cascade) on a fresh SQLite database
and a free port, waits until it is healthy, logs in as demo user 1 (every request after
carries its access token), then reports
requests/second and p50/p95 latency for: GET /health (the trivial baseline),
balance checks through POST /assistant, two-step transfers (both requests,
the second one verifying the bcrypt password and writing the ledger), a balance check
inside a conversation (the session state loaded and saved) and a four-turn conversation
transfer. `--redis URL` keeps the conversations in Redis instead of the process.
Prints figures; never fails on timing.

    .venv/bin/python bench/bench_api.py [--workers 4] [--requests 400] [--transfers 40]
        [--redis redis://127.0.0.1:6379/0]
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
# The benchmarks measure the server, not the per-user limits (10 requests a minute).
NO_LIMITS = {"BANKBOT_LIMITS__REQUESTS": "1000000", "BANKBOT_LIMITS__TRANSFERS": "1000000"}
START_TIMEOUT_S = 180  # Rasa and the LLM load in the background before /health is healthy
LOG_LINES_SHOWN = 20  # of a server that failed to start


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def turn_taking(choice: str | None) -> dict[str, str]:
    """Server settings for `--turn on|off`: end of turn by meaning with backchannels heard
    out (600 ms), or the fixed silence hang-over with any speech stopping a reply. None:
    as config.yaml says."""
    if choice is None:
        return {}
    on = choice == "on"
    return {
        "BANKBOT_VOICE__TURN__ENABLED": str(on).lower(),
        "BANKBOT_VOICE__TURN__BARGE_IN_MS": "600" if on else "0",
    }


def start_server(
    port: int,
    database: Path,
    redis_url: str | None,
    settings: dict[str, str] | None = None,
    root: Path = ROOT,
) -> subprocess.Popen:
    """`server.py` (of the checkout at `root`) on this port and SQLite file, with BANKBOT_*
    `settings`, once healthy.

    The server's output goes to a log file beside the database. A server that exits while
    starting (a bad setting, a missing model file) ends the wait at once, with its exit
    status and the last lines of that log."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "BANKBOT_LOG_LEVEL": "warning",
        "BANKBOT_DEMO_CREDENTIALS": "published",  # the benchmarks log in as demo users
        **NO_LIMITS,
        **(settings or {}),
    }
    if redis_url:
        env |= {"REDIS_URL": redis_url, "BANKBOT_SESSIONS__KEY_PREFIX": f"bench:{uuid.uuid4()}:"}
    log_path = database.with_suffix(".log")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "server.py", "--port", str(port)],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:  # healthy: Rasa and the LLM loaded too
        if process.poll() is not None:
            raise SystemExit(
                f"the server exited with status {process.returncode} while starting:\n"
                + _tail(log_path)
            )
        try:
            if (
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).json()["status"]
                == "healthy"
            ):
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    process.kill()
    process.wait()
    raise SystemExit(f"the server was not healthy within {START_TIMEOUT_S} s:\n" + _tail(log_path))


def _tail(log_path: Path, lines: int = LOG_LINES_SHOWN) -> str:
    """The last `lines` lines of the server's log."""
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])


def measure(
    name: str,
    call: Callable[[httpx.Client], None],
    count: int,
    workers: int,
    headers: dict[str, str] | None = None,
) -> None:
    latencies: list[float] = []

    def one(client: httpx.Client) -> None:
        started = time.perf_counter()
        call(client)
        latencies.append(time.perf_counter() - started)

    with httpx.Client(timeout=30, headers=headers) as client, ThreadPoolExecutor(workers) as pool:
        began = time.perf_counter()
        for future in [pool.submit(one, client) for _ in range(count)]:
            future.result()
        elapsed = time.perf_counter() - began
    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"{name:<34} {count:>5} calls  {count / elapsed:>8.1f} /s"
        f"  p50 {cuts[49] * 1000:>7.1f} ms  p95 {cuts[94] * 1000:>7.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--transfers", type=int, default=40)
    parser.add_argument("--redis", help="keep conversations in this Redis")
    args = parser.parse_args()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as folder:
        server = start_server(port, Path(folder) / "bench.db", args.redis)
        try:
            form = {"username": "john@example.com", "password": "password123"}
            login = httpx.post(f"{base}/api/auth/login", data=form, timeout=30)
            user = {"Authorization": f"Bearer {login.json()['access_token']}"}  # user 1

            def health(client: httpx.Client) -> None:
                client.get(f"{base}/health").raise_for_status()

            def balance(client: httpx.Client) -> None:
                body = {"user_id": 1, "message": "what's my balance"}
                client.post(f"{base}/assistant", json=body).raise_for_status()

            def paraphrase(client: httpx.Client) -> None:
                body = {"user_id": 1, "message": "could you move five hundred bucks over to ravi"}
                assert client.post(f"{base}/assistant", json=body).json()["data"][
                    "require_password"
                ]

            def transfer(client: httpx.Client) -> None:
                body = {"user_id": 1, "message": "send one rupee to ravi"}
                assert client.post(f"{base}/assistant", json=body).json()["data"][
                    "require_password"
                ]
                body["password"] = "password123"
                assert client.post(f"{base}/assistant", json=body).json()["data"]["success"]

            def turn(client: httpx.Client, session: str, message: str, **extra: str) -> dict:
                body = {"user_id": 1, "message": message, "session_id": session, **extra}
                return client.post(f"{base}/assistant", json=body).json()

            def conversation_balance(client: httpx.Client) -> None:
                assert "balance" in turn(client, uuid.uuid4().hex, "what's my balance")["reply"]

            def conversation_transfer(client: httpx.Client) -> None:
                session = uuid.uuid4().hex
                assert turn(client, session, "I want to send money")["data"]["awaiting"]
                assert turn(client, session, "ravi")["data"]["awaiting"] == "amount"
                assert turn(client, session, "one rupee")["data"]["require_password"]
                assert turn(client, session, "ok", password="password123")["data"]["success"]

            store = f"Redis {args.redis}" if args.redis else "in-process sessions"
            print(
                f"{os.cpu_count()} CPUs, {args.workers} client threads, SQLite, {store},"
                " one server process"
            )
            measure("GET /health (baseline)", health, args.requests, args.workers)
            measure("POST /assistant balance", balance, args.requests, args.workers, user)
            measure(
                "POST /assistant paraphrase (Rasa)", paraphrase, args.requests, args.workers, user
            )
            measure("two-step transfer (2 requests)", transfer, args.transfers, args.workers, user)
            measure("conversation balance", conversation_balance, args.requests, args.workers, user)
            measure(
                "conversation transfer (4 turns)",
                conversation_transfer,
                args.transfers,
                args.workers,
                user,
            )
        finally:
            server.terminate()
            server.wait(timeout=20)


if __name__ == "__main__":
    main()
