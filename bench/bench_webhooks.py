"""Webhook delivery from the real app's outbox to a local HTTP receiver: how long an event
takes from its commit to the receiver, and how many deliveries a second one process makes.

The app (create_app, config.yaml's webhook settings unless given) runs in this process on
a fresh database (SQLite, or --database-url); `--events` fraud.detected events are
emitted through the app's event stream at `--rate` per second for user 1, who has one
subscription pointing at a ThreadingHTTPServer on 127.0.0.1. Latency runs from the
event's commit to the request's arrival, and so includes the poll interval
(webhooks.poll_interval_s). Prints percentiles and the delivery rate; never fails on timing.

    .venv/bin/python bench/bench_webhooks.py [--events 300] [--rate 50] [--poll 1.0]
"""

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from server import create_app, load_settings  # noqa: E402

arrivals: dict[str, float] = {}
lock = threading.Lock()


class Server(ThreadingHTTPServer):
    request_queue_size = 128  # a batch's connections arrive at once (the default is 5)


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with lock:
            arrivals.setdefault(json.loads(body)["event_id"], time.monotonic())
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--rate", type=float, default=50, help="events emitted per second")
    parser.add_argument("--poll", type=float, help="webhooks.poll_interval_s (default: config)")
    parser.add_argument("--database-url", help="default: a new SQLite file")
    args = parser.parse_args()

    receiver = Server(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as folder:
        environ = {
            "DATABASE_URL": args.database_url or f"sqlite:///{folder}/bench.db",
            "BANKBOT_NLU__BACKENDS": "[rules]",
            "BANKBOT_VOICE__ENABLED": "false",
            "BANKBOT_LOG_LEVEL": "warning",
            "BANKBOT_WEBHOOKS__ALLOWED_PRIVATE_HOSTS": "[127.0.0.1]",
        }
        if args.poll is not None:
            environ["BANKBOT_WEBHOOKS__POLL_INTERVAL_S"] = str(args.poll)
        settings = load_settings(environ=environ)
        with TestClient(create_app(settings)) as client:
            events = client.app.state.services.bank.events
            client.app.state.services.bank.webhooks.create(
                1, f"http://127.0.0.1:{receiver.server_address[1]}/hook", ["fraud.detected"]
            )
            committed: dict[str, float] = {}
            started = time.monotonic()
            for index in range(args.events):
                time.sleep(max(0.0, started + index / args.rate - time.monotonic()))
                event = events.emit(1, "fraud.detected", {"risk_score": 50, "amount": 100})
                committed[f"EVT_{event.id}"] = time.monotonic()
            deadline = time.monotonic() + 120
            while len(arrivals) < args.events and time.monotonic() < deadline:
                time.sleep(0.05)
            finished = max(arrivals.values(), default=time.monotonic())
    receiver.shutdown()

    latencies = [(arrivals[key] - committed[key]) * 1000 for key in committed if key in arrivals]
    print(
        f"database: {settings.database_url.split(':')[0]}, poll interval "
        f"{settings.webhooks.poll_interval_s} s, batch {settings.webhooks.batch_size}"
    )
    print(f"events: {args.events} at {args.rate}/s; delivered: {len(latencies)}")
    if latencies:
        print(
            f"commit → receiver: p50 {statistics.median(latencies):.0f} ms, "
            f"p95 {percentile(latencies, 0.95):.0f} ms, max {max(latencies):.0f} ms"
        )
        print(f"delivered {len(latencies) / (finished - started):.0f} events/s overall")


if __name__ == "__main__":
    main()
