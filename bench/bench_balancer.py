"""Balance checks per second through nginx (deploy/nginx.conf) in front of 1, then 3 server
processes, in one run.

Each round starts its server processes (rules-only NLU, voice off, demo mode, per-user limits
out of reach; PostgreSQL and Redis shared, a fresh database and key prefix per run) and
Debian's nginx in front, warms up, then sends `POST /assistant` "check my balance" for
users 1-5 from `--clients` threads (closed loop: each sends its next request when the last
is answered) for `--seconds`. Prints requests/s, latency p50/p95 and errors per round,
and the CPU time the server processes used; never fails on timing.

    .venv/bin/python bench/bench_balancer.py [--processes 1 3] [--seconds 20] [--clients 12]
"""

import argparse
import contextlib
import itertools
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from tests.balancer import running_nginx  # noqa: E402
from tests.conftest import NO_LIMITS, RULES_ONLY, VOICE_OFF, free_port  # noqa: E402
from tests.test_server import running_server, wait_for  # noqa: E402

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379/0"


@contextlib.contextmanager
def database() -> Iterator[str]:
    name = f"bench_balancer_{uuid.uuid4().hex[:8]}"
    admin = create_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def load(base: str, seconds: float, clients: int) -> tuple[list[float], int]:
    """Latencies (ms) of the answered requests, and the count of failed ones."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    users = itertools.cycle(range(1, 6))
    stop = time.monotonic() + seconds

    def client() -> None:
        nonlocal errors
        with httpx.Client(base_url=base, timeout=30) as http:
            while time.monotonic() < stop:
                with lock:
                    user = next(users)
                started = time.perf_counter()
                try:
                    ok = http.post(
                        "/assistant", json={"user_id": user, "message": "check my balance"}
                    ).is_success
                except httpx.HTTPError:
                    ok = False
                with lock:
                    if ok:
                        latencies.append((time.perf_counter() - started) * 1000)
                    else:
                        errors += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors


def cpu_s(pids: list[int]) -> float:
    """User and system CPU seconds of these processes so far (/proc/PID/stat)."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def round_of(count: int, args: argparse.Namespace, folder: Path) -> None:
    with database() as url:
        env = {
            **RULES_ONLY,
            **VOICE_OFF,
            **NO_LIMITS,
            "BANKBOT_DEMO_MODE": "1",
            "BANKBOT_LOG_LEVEL": "warning",
            "DATABASE_URL": url,
            "REDIS_URL": REDIS,
            "BANKBOT_SESSIONS__KEY_PREFIX": f"bench-balancer:{uuid.uuid4().hex[:8]}:",
        }
        ports = [free_port() for _ in range(count)]
        with contextlib.ExitStack() as stack:
            processes = [
                stack.enter_context(running_server(["--port", str(port)], env)) for port in ports
            ]
            for port, process in zip(ports, processes, strict=True):
                wait_for(f"http://127.0.0.1:{port}/health", process, seconds=120)
            base = stack.enter_context(running_nginx(folder / f"nginx-{count}", free_port(), ports))
            load(base, 2, args.clients)  # warm-up: connections, caches
            before = cpu_s([p.pid for p in processes])
            latencies, errors = load(base, args.seconds, args.clients)
            used = cpu_s([p.pid for p in processes]) - before
    rate = len(latencies) / args.seconds
    p50 = statistics.median(latencies) if latencies else float("nan")
    p95 = statistics.quantiles(latencies, n=20)[18] if len(latencies) >= 20 else float("nan")
    print(
        f"{count} process(es): {rate:7.1f} requests/s  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  "
        f"errors {errors}  server CPU {used:5.1f} s ({used / max(len(latencies), 1) * 1000:.1f} "
        f"ms a request)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=12)
    args = parser.parse_args()
    print(
        f"balance checks through nginx, {args.clients} clients, {args.seconds:.0f} s a round, "
        f"{os.cpu_count()} CPU cores (load average {os.getloadavg()[0]:.1f})"
    )
    with tempfile.TemporaryDirectory(prefix="bench-balancer-") as folder:
        for count in args.processes:
            round_of(count, args, Path(folder))


if __name__ == "__main__":
    main()
