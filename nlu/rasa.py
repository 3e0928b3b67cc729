"""The Rasa stage: Rasa NLU as a supervised child process, and a client for its parse API.

Rasa needs Python 3.10 and packages that clash with ours, so it runs in its own
environment as a child of the server, on 127.0.0.1 with a new random token each start.
A watchdog thread starts it, waits until its model is loaded, restarts it when it dies
and stops it on `stop()`. While Rasa is loading or down, `RasaBackend.parse` answers
None and the cascade goes on without it.
"""

import contextlib
import logging
import os
import secrets
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from nlu.rasa_train import RASA_HOME, rasa_command, rasa_environment, trained_model

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
# How often the watchdog looks at the process, and asks a starting Rasa if it is ready.
WATCH_INTERVAL_S = 0.2
STATUS_TIMEOUT_S = 2.0
# After SIGTERM, how long Rasa may take to exit before it gets SIGKILL.
STOP_GRACE_S = 5.0
# While starts keep failing, the restart delay doubles up to restart_delay_s × this.
MAX_BACKOFF_FACTOR = 16


class RasaSettings(BaseModel):
    """Values come from config.yaml, which documents each key."""

    model_config = ConfigDict(extra="forbid")

    port: int
    ready_timeout_s: float
    parse_timeout_s: float
    restart_delay_s: float


@dataclass(frozen=True)
class RasaParse:
    intent: str
    confidence: float
    # Entity name → value (after Rasa's synonym mapping); the first of repeated entities.
    entities: dict[str, str]


class RasaServer:
    """Rasa NLU as a child process: started, watched, restarted when it dies, stopped."""

    def __init__(self, settings: RasaSettings) -> None:
        self.settings = settings
        self.model = trained_model()
        self.url = f"http://{HOST}:{settings.port}"
        self._command = rasa_command("run", "--enable-api", "-i", HOST, "-p", str(settings.port))
        self._command += ["-m", str(self.model)]
        self.log_file = RASA_HOME / f"server-{settings.port}.log"
        self.token = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._watchdog: threading.Thread | None = None

    @property
    def is_ready(self) -> bool:
        """Rasa is running with its model loaded."""
        process = self._process
        return self._ready.is_set() and process is not None and process.poll() is None

    @property
    def pid(self) -> int | None:
        """The process id of the running Rasa, if any."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def start(self) -> None:
        """Start Rasa in the background; `is_ready` turns true once its model is loaded."""
        if self._watchdog is not None:
            raise RuntimeError("the Rasa server is already started")
        self._stopping.clear()
        RASA_HOME.mkdir(parents=True, exist_ok=True)
        self.log_file.write_bytes(b"")  # one log per start(); restarts append to it
        # Rasa is started from this thread only: Linux's parent-death signal, which stops
        # Rasa if the server is killed, fires when the thread that started it ends.
        self._watchdog = threading.Thread(target=self._supervise, name="rasa-watchdog")
        self._watchdog.daemon = True
        self._watchdog.start()

    def stop(self) -> None:
        """Stop Rasa and its watchdog; returns once the process is gone."""
        self._stopping.set()
        if self._watchdog is not None:
            self._watchdog.join()
            self._watchdog = None

    def _supervise(self) -> None:
        delay = self.settings.restart_delay_s
        while not self._stopping.is_set():
            process = self._spawn()
            try:
                became_ready = self._await_ready(process)
                if became_ready:
                    self._watch(process)
            finally:
                self._ready.clear()
                _terminate(process)
            if self._stopping.is_set():
                break
            log.error(
                "Rasa (pid %d) exited with code %s; restarting in %.1f s (log: %s)",
                process.pid,
                process.returncode,
                delay,
                self.log_file,
            )
            self._stopping.wait(delay)
            ceiling = self.settings.restart_delay_s * MAX_BACKOFF_FACTOR
            delay = self.settings.restart_delay_s if became_ready else min(2 * delay, ceiling)

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.token = secrets.token_urlsafe(24)
        with self.log_file.open("ab") as output:
            process = subprocess.Popen(
                [*self._command, "-t", self.token],
                env=rasa_environment(),
                cwd=RASA_HOME,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, stopped as a whole
            )
        self._process = process
        log.info("Rasa starting (pid %d, %s, model %s)", process.pid, self.url, self.model.name)
        return process

    def _await_ready(self, process: subprocess.Popen[bytes]) -> bool:
        """Poll /status until the model is loaded; False if Rasa exits, hangs or is stopped."""
        started = time.monotonic()
        deadline = started + self.settings.ready_timeout_s
        with httpx.Client(timeout=STATUS_TIMEOUT_S) as client:
            while process.poll() is None and time.monotonic() < deadline:
                if self._model_loaded(client):
                    self._ready.set()
                    log.info("Rasa ready in %.1f s", time.monotonic() - started)
                    return True
                if self._stopping.wait(WATCH_INTERVAL_S):
                    return False
        if process.poll() is None:
            log.error("Rasa not ready after %.0f s", self.settings.ready_timeout_s)
        return False

    def _model_loaded(self, client: httpx.Client) -> bool:
        """Our Rasa answers with a model; the token keeps another one on the port from passing."""
        try:
            response = client.get(f"{self.url}/status", params={"token": self.token})
            return response.status_code == httpx.codes.OK and bool(response.json()["model_id"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return False

    def _watch(self, process: subprocess.Popen[bytes]) -> None:
        """Return when the process exits or the server is being stopped."""
        while process.poll() is None and not self._stopping.wait(WATCH_INTERVAL_S):
            pass


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, SIGKILL it if it lingers; reap the process."""
    if process.poll() is None:
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            log.warning("Rasa (pid %d) ignored SIGTERM; killing it", process.pid)
    _signal_group(process.pid, signal.SIGKILL)  # anything left in its group
    process.wait()


def _signal_group(group: int, signal_number: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal_number)


class RasaBackend:
    """Asks the Rasa server what a sentence means; None whenever Rasa cannot answer."""

    def __init__(self, server: RasaServer) -> None:
        self.server = server
        self._client = httpx.Client(timeout=server.settings.parse_timeout_s)

    def parse(self, text: str) -> RasaParse | None:
        """Rasa's reading of the text, or None if Rasa is not ready, slow or failing."""
        if not text.strip() or not self.server.is_ready:
            return None  # Rasa answers blank text with an error
        try:
            response = self._client.post(
                f"{self.server.url}/model/parse",
                params={"token": self.server.token},
                json={"text": text},
            )
            response.raise_for_status()
            return _to_parse(response.json())
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
            log.warning("Rasa parse failed: %r", error)
            return None

    def close(self) -> None:
        self._client.close()


def _to_parse(body: dict[str, Any]) -> RasaParse | None:
    """The parse from Rasa's JSON answer; None if Rasa named no intent."""
    intent = body["intent"]
    if not intent.get("name"):
        return None
    entities: dict[str, str] = {}
    for entity in body.get("entities", []):
        entities.setdefault(entity["entity"], str(entity["value"]))
    return RasaParse(intent["name"], float(intent["confidence"]), entities)
