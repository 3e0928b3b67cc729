"""The Rasa stage: Rasa NLU as a supervised child process or a shared server, and a
client for its parse API.

Rasa needs Python 3.10 and packages that clash with ours, so it runs in its own
environment. By default it is a child of the server, on 127.0.0.1 and a free port with a
new random token each start: a watchdog thread starts it, waits until its model is
loaded, restarts it when it dies and stops it on `stop()`. With `rasa.url` set, the server
uses a Rasa that is already running (`rasa run --enable-api`, one per host or cluster,
shared by every server process) and only watches whether it answers. While Rasa is
loading or down, `RasaBackend.parse` answers None and the cascade goes on without it.
"""

import contextlib
import logging
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from pydantic import BaseModel, ConfigDict

from nlu.rasa_launch import TOKEN_VARIABLE
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

    url: str = ""  # a running Rasa server to use; empty: a managed child process
    # That server's `-t` token (BANKBOT_RASA__TOKEN), if it has one; for a managed child,
    # its token (empty: a new random one at each start).
    token: str = ""
    port: int  # the managed child's port; 0: a free one, chosen at each start
    ready_timeout_s: float
    parse_timeout_s: float
    restart_delay_s: float
    # The embedding stage's vote share a Rasa reading needs to keep its confidence.
    min_support: float


@dataclass(frozen=True)
class RasaParse:
    intent: str
    confidence: float
    # Entity name → value (after Rasa's synonym mapping); the first of repeated entities.
    entities: dict[str, str]


class RasaEndpoint(Protocol):
    """Where the Rasa stage sends its parses: a managed child or a shared server."""

    settings: RasaSettings
    url: str
    token: str

    @property
    def is_ready(self) -> bool: ...

    @property
    def pid(self) -> int | None:
        """The managed child's process id while it runs; None for a shared server."""

    @property
    def model_name(self) -> str: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


def free_port() -> int:
    """A TCP port nobody listens on now, on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class RasaServer:
    """Rasa NLU as a child process: started, watched, restarted when it dies, stopped."""

    def __init__(self, settings: RasaSettings) -> None:
        self.settings = settings
        self.model = trained_model()
        self.url = f"http://{HOST}:{settings.port}"
        self._command = rasa_command("run", "--enable-api", "-i", HOST)
        self._command += ["-m", str(self.model)]
        # Named after the port, or this server process when the port is chosen at each start.
        self.log_file = RASA_HOME / f"server-{settings.port or f'pid{os.getpid()}'}.log"
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

    @property
    def model_name(self) -> str:
        return self.model.name

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
        self.token = self.settings.token or secrets.token_urlsafe(24)
        port = self.settings.port or free_port()
        self.url = f"http://{HOST}:{port}"
        with self.log_file.open("ab") as output:
            process = subprocess.Popen(
                [*self._command, "-p", str(port)],
                # By environment, not as an argument: `ps` shows every user the arguments.
                env={**rasa_environment(), TOKEN_VARIABLE: self.token},
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


class SharedRasa:
    """A Rasa server that someone else runs (`rasa.url`): watched, never started or stopped.

    A thread asks its /status every `WATCH_INTERVAL_S` × 10; it is ready while it answers
    with a model loaded.
    """

    pid = None

    def __init__(self, settings: RasaSettings) -> None:
        self.settings = settings
        self.url = settings.url.rstrip("/")
        self.token = settings.token
        self._model_name = ""
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def is_ready(self) -> bool:
        return self._ready.is_set()

    @property
    def model_name(self) -> str:
        return self._model_name

    def start(self) -> None:
        self._stopping.clear()
        self._watcher = threading.Thread(target=self._watch, name="rasa-watcher", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join()
            self._watcher = None

    def _watch(self) -> None:
        with httpx.Client(timeout=STATUS_TIMEOUT_S) as client:
            while True:
                self._check(client)
                interval = WATCH_INTERVAL_S * (10 if self._ready.is_set() else 1)
                if self._stopping.wait(interval):
                    return

    def _check(self, client: httpx.Client) -> None:
        params = {"token": self.token} if self.token else {}
        try:
            response = client.get(f"{self.url}/status", params=params)
            response.raise_for_status()
            status = response.json()
            if not status["model_id"]:
                raise ValueError("no model loaded")
            self._model_name = str(status["model_file"]).rsplit("/", 1)[-1]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
            if self._ready.is_set():
                log.error("the shared Rasa at %s stopped answering: %r", self.url, error)
            self._ready.clear()
            return
        if not self._ready.is_set():
            log.info("the shared Rasa at %s is ready (model %s)", self.url, self._model_name)
        self._ready.set()


@contextlib.contextmanager
def rasa_for_workers(
    backends: list[str], settings: RasaSettings, environ: MutableMapping[str, str]
) -> Iterator[None]:
    """One managed child for all N workers of `server.py --workers N`, started and watched
    by their parent process, unless they use a shared server (`rasa.url`) or no Rasa. The
    workers' environment points them at it as a shared server; its port and token stay
    the same across restarts, so they find it again after the watchdog restarted it.
    """
    if "rasa" not in backends or settings.url:
        yield
        return
    token = secrets.token_urlsafe(24)
    server = RasaServer(
        settings.model_copy(update={"port": settings.port or free_port(), "token": token})
    )
    environ.update(BANKBOT_RASA__URL=server.url, BANKBOT_RASA__TOKEN=token)
    server.start()
    try:
        yield
    finally:
        server.stop()


def rasa_endpoint(settings: RasaSettings) -> RasaEndpoint:
    """The shared server of `rasa.url`, else a managed child process."""
    return SharedRasa(settings) if settings.url else RasaServer(settings)


class RasaBackend:
    """Asks the Rasa server what a sentence means; None whenever Rasa cannot answer."""

    def __init__(self, server: RasaEndpoint) -> None:
        self.server = server
        self._client = httpx.Client(timeout=server.settings.parse_timeout_s)

    def parse(self, text: str) -> RasaParse | None:
        """Rasa's reading of the text, or None if Rasa is not ready, slow or failing."""
        if not text.strip() or not self.server.is_ready:
            return None  # Rasa answers blank text with an error
        try:
            token = self.server.token
            response = self._client.post(
                f"{self.server.url}/model/parse",
                params={"token": token} if token else {},
                json={"text": text},
            )
            response.raise_for_status()
            return _to_parse(response.json())
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
            # Not the error's text: httpx's names the URL, which carries the token.
            status = getattr(getattr(error, "response", None), "status_code", None)
            log.warning("Rasa parse failed: %s (HTTP status %s)", type(error).__name__, status)
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
