"""A real HTTP receiver for webhooks, on a free port in a thread of the test process.

Its answers are scripted: each request takes the next status code from `script` (an int,
or "hang" to answer only after `hang_s` seconds); when the script runs out it answers 200.
Every request is recorded with its arrival time, headers and raw body.
"""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    at: float  # time.monotonic()
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    port: int
    script: list[int | str]
    hang_s: float
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def wait_for(self, count: int, seconds: float = 20) -> list[Received]:
        """The first `count` requests, once that many have arrived."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.requests) >= count:
                    return list(self.requests[:count])
            time.sleep(0.05)
        raise AssertionError(f"{len(self.requests)} requests arrived, not {count}")

    def answer(self) -> int | str:
        with self.lock:
            return self.script.pop(0) if self.script else 200


@contextmanager
def receiving(
    port: int = 0, script: list[int | str] | None = None, hang_s: float = 0
) -> Iterator[Receiver]:
    server = _Server(("127.0.0.1", port), _Handler)
    server.daemon_threads = True
    receiver = Receiver(server.server_address[1], list(script or []), hang_s)
    server.receiver = receiver  # type: ignore[attr-defined]  # the handler reads it back
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # a dispatcher's batch connects at once (the default is 5)


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        receiver: Receiver = self.server.receiver  # type: ignore[attr-defined]  # set in receiving()
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with receiver.lock:
            receiver.requests.append(
                Received(
                    time.monotonic(),
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
            )
        answer = receiver.answer()
        if answer == "hang":
            time.sleep(receiver.hang_s)
            answer = 200
        self.send_response(int(answer))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass
