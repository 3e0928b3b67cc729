"""A steady load on POST /assistant: a fixed request rate for a fixed time, against the real
server (default settings: the whole NLU cascade), on a fresh SQLite database.

Requests are sent on a fixed schedule whatever the answers do (open loop), so a slow
server builds a queue instead of slowing the load down; each latency runs from the
request's scheduled time to its answer, and so includes that queueing. The messages
cycle through users 1-5 and a mix of balance, history, paraphrased (read by Rasa) and
first-step transfer requests, each with its user's access token (one login per user
before the load). The per-user limits are raised out of reach (bench_api.NO_LIMITS):
this measures the server, not the 10-requests-a-minute rule.
Prints latency percentiles, the achieved rate and the error rate; never fails on timing.

    .venv/bin/python bench/bench_load.py [--rate 20] [--seconds 60] [--redis URL]
"""

import argparse
import itertools
import os
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import yaml
from bench_api import ROOT, free_port, start_server  # this folder is on the path when run

MESSAGES = [
    "what's my balance",
    "show my last 3 transactions",
    "could you tell me how much money i have left",
    "send 100 to {contact}",
    "how much do I have",
    "list my recent transactions",
]
CONTACT = {1: "ravi", 2: "john", 3: "jane", 4: "john", 5: "jane"}


def log_in(base: str) -> dict[int, dict[str, str]]:
    """Each demo user's Authorization header."""
    demo = yaml.safe_load((ROOT / "data" / "demo_users.yaml").read_text(encoding="utf-8"))
    headers = {}
    for user in demo["users"]:
        form = {"username": user["email"], "password": demo["password"]}
        login = httpx.post(f"{base}/api/auth/login", data=form, timeout=30)
        login.raise_for_status()
        headers[user["id"]] = {"Authorization": f"Bearer {login.json()['access_token']}"}
    return headers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=20, help="requests per second")
    parser.add_argument("--seconds", type=float, default=60, help="how long to send")
    parser.add_argument("--redis", help="keep sessions and counters in this Redis")
    args = parser.parse_args()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # Rasa's own port too, so that another server on this machine does not stop it starting.
    os.environ.setdefault("BANKBOT_RASA__PORT", str(free_port()))
    total = int(args.rate * args.seconds)
    bodies = itertools.cycle(
        {"user_id": user, "message": message.format(contact=CONTACT[user])}
        for message in MESSAGES
        for user in CONTACT
    )
    requests = [next(bodies) for _ in range(total)]
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    lock = threading.Lock()

    with tempfile.TemporaryDirectory() as folder:
        server = start_server(port, Path(folder) / "bench.db", args.redis)
        try:
            tokens = log_in(base)
            with (
                httpx.Client(timeout=30, limits=httpx.Limits(max_connections=256)) as client,
                ThreadPoolExecutor(256) as pool,
            ):

                def one(body: dict, scheduled: float) -> None:
                    try:
                        answer = client.post(
                            f"{base}/assistant", json=body, headers=tokens[body["user_id"]]
                        )
                        outcome = str(answer.status_code)
                    except httpx.HTTPError as error:
                        outcome = type(error).__name__
                    done = time.perf_counter()
                    with lock:
                        latencies.append(done - scheduled)
                        statuses[outcome] = statuses.get(outcome, 0) + 1

                began = time.perf_counter()
                for index, body in enumerate(requests):
                    scheduled = began + index / args.rate
                    time.sleep(max(0.0, scheduled - time.perf_counter()))
                    pool.submit(one, body, scheduled)
            elapsed = time.perf_counter() - began
        finally:
            server.terminate()
            server.wait(timeout=20)

    cuts = statistics.quantiles(latencies, n=100)
    errors = sum(count for status, count in statuses.items() if status != "200")
    store = f"Redis {args.redis}" if args.redis else "in-process sessions"
    print(f"{os.cpu_count()} CPUs, one server process, SQLite, {store}, whole NLU cascade")
    print(
        f"target {args.rate:g} /s for {args.seconds:g} s: {total} requests, "
        f"achieved {len(latencies) / elapsed:.1f} /s (all answered after {elapsed:.1f} s)"
    )
    print(
        f"latency p50 {cuts[49] * 1000:.1f} ms  p95 {cuts[94] * 1000:.1f} ms  "
        f"p99 {cuts[98] * 1000:.1f} ms  max {max(latencies) * 1000:.1f} ms"
    )
    by_status = dict(sorted(statuses.items()))
    print(f"errors {errors} ({errors / total:.2%}); answers by status: {by_status}")


if __name__ == "__main__":
    main()
