"""Several server processes on one host, with the settings as shipped: `server.py --workers 2`
and a second, separate `server.py` start side by side, and Rasa is ready in every one of
them (no port collides: each Rasa child takes a free port; the workers share their
parent's). The speech models and the LLM stay off: they are not what collides."""

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.conftest import VOICE_OFF, free_port

ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT_S = 600  # a hang guard only: two Rasa children and three servers on 2 busy cores


@contextlib.contextmanager
def serving(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """A server process whose output goes to `log` (read after it stopped)."""
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "server.py", *args],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            process.terminate()
            process.wait(timeout=30)


def messages(log: Path) -> list[str]:
    """The messages of the JSON log lines."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            found.append(str(json.loads(line).get("message", "")))
    return found


def rasa_ready(base: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        status = httpx.get(f"{base}/api/status", timeout=5).json()
        return status["ai_backend"] == "rules+rasa" and status["ai_available"] is True
    return False


def test_workers_and_a_second_server_on_one_host_each_get_rasa(
    tmp_path: Path, postgres_url: str
) -> None:
    env = {
        **VOICE_OFF,
        "BANKBOT_NLU__BACKENDS": "[rules, rasa]",
        "DATABASE_URL": postgres_url,
        "BANKBOT_LOG_LEVEL": "info",
    }
    ports = free_port(), free_port()
    logs = tmp_path / "workers.log", tmp_path / "single.log"
    with (
        serving(["--workers", "2", "--port", str(ports[0])], env, logs[0]) as workers,
        serving(["--port", str(ports[1])], env, logs[1]) as single,
    ):
        deadline = time.monotonic() + READY_TIMEOUT_S
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        while not all(rasa_ready(base) for base in bases):
            exited = [
                log.read_text()[-3000:]
                for log, p in zip(logs, (workers, single), strict=True)
                if p.poll() is not None
            ]
            assert not exited, exited
            assert time.monotonic() < deadline, "Rasa did not get ready in both"
            time.sleep(1)
        # Each worker has found the parent's Rasa ready, not just the one that answered.
        while sum("shared Rasa" in m and "is ready" in m for m in messages(logs[0])) < 2:
            assert time.monotonic() < deadline, messages(logs[0])
            time.sleep(0.5)
    workers_log, single_log = messages(logs[0]), messages(logs[1])
    # One Rasa child for the two workers (their parent's), and one for the other server.
    assert sum(m.startswith("Rasa ready in") for m in workers_log) == 1
    assert sum(m.startswith("Rasa ready in") for m in single_log) == 1
    assert not any("address already in use" in m.lower() for m in workers_log + single_log)
