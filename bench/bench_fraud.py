"""What the fraud score adds to every transfer: `FraudMonitor.assess()` latency.

Seeds the demo users in a fresh SQLite database (or the PostgreSQL database of
`--database`), gives user 1 a history of `--history` payments to Ravi, then times
`--calls` assessments of a transfer to Mike (a receiver never paid: the slowest path,
which also looks for a transfer to that account under another name) and of one to Ravi.
Prints p50/p95 in milliseconds; never fails on timing.

    .venv/bin/python bench/bench_fraud.py [--history 500] [--calls 300]
        [--database postgresql+psycopg://postgres@127.0.0.1:5432/bench]
"""

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from banking import Ledger, make_engine, seed_demo_data  # noqa: E402
from banking.fraud import FraudMonitor  # noqa: E402
from server import DEMO_DATA, load_settings  # noqa: E402


def timed(call: Callable[[], object], calls: int) -> tuple[float, float]:
    durations = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        durations.append((time.perf_counter() - started) * 1000)
    durations.sort()
    return statistics.median(durations), durations[int(len(durations) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=500)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--database", help="SQLAlchemy URL of an empty database")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        url = args.database or f"sqlite:///{Path(directory) / 'bench.db'}"
        engine = make_engine(url)
        seed_demo_data(engine, DEMO_DATA)
        ledger = Ledger(engine)
        for _ in range(args.history):
            ledger.transfer(1, 3, 100, receiver_label="Ravi", sender_label="John")
        settings = load_settings()
        zone = ZoneInfo(settings.assistant.timezone)
        monitor = FraudMonitor(engine, ledger.events, settings.fraud, zone)
        print(f"database: {engine.url.get_backend_name()}, {args.history} payments in history")
        for label, receiver_id in (("Mike", 5), ("Ravi", 3)):
            p50, p95 = timed(
                lambda to=receiver_id, name=label: monitor.assess(1, to, name, 900_000),
                args.calls,
            )
            print(f"assess() to {label}: p50 {p50:.2f} ms, p95 {p95:.2f} ms ({args.calls} calls)")
        engine.dispose()


if __name__ == "__main__":
    main()
