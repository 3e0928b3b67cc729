"""The Rasa stage against a real Rasa child process serving the really trained model."""

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from nlu import rasa_train
from nlu.rasa import RasaBackend, RasaServer, RasaSettings, SharedRasa
from nlu.rasa_train import RasaSetupError
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 120.0


def settings(port: int | None = None) -> RasaSettings:
    return RasaSettings(
        port=port or free_port(),
        ready_timeout_s=READY_TIMEOUT_S,
        parse_timeout_s=1.0,
        restart_delay_s=0.5,
        min_support=0.35,
    )


def wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def alive(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def mapped_files(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/maps").read_text()
    except FileNotFoundError:
        return ""


def log_tail(server: RasaServer) -> str:
    return server.log_file.read_text(errors="replace")[-3000:]


@contextmanager
def running(server: RasaServer) -> Iterator[RasaServer]:
    """Started and ready; then stopped, and its log (named after a random port) removed."""
    server.start()
    try:
        ready = wait_for(lambda: server.is_ready, READY_TIMEOUT_S)
        assert ready, f"Rasa is not ready; the end of its log:\n{log_tail(server)}"
        yield server
    finally:
        server.stop()
        server.log_file.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def model() -> Path:
    """Trains only if data/nlu.yml, the pipeline or the Rasa pins changed."""
    return rasa_train.train()


@pytest.fixture(scope="module")
def server(model: Path) -> Iterator[RasaServer]:
    rasa = RasaServer(settings())
    assert rasa.model == model
    with running(rasa):
        yield rasa


@pytest.fixture(scope="module")
def backend(server: RasaServer) -> Iterator[RasaBackend]:
    client = RasaBackend(server)
    yield client
    client.close()


@pytest.mark.parametrize(
    ("text", "intent", "entities"),
    [
        ("send 500 to ravi", "send_money", {"amount": "500", "receiver": "ravi"}),
        ("whats my balance", "check_balance", {}),
        ("show my last three transactions", "transaction_history", {"count": "three"}),
        ("tell me a joke", "out_of_scope", {}),
    ],
)
def test_parse(backend: RasaBackend, text: str, intent: str, entities: dict[str, str]) -> None:
    result = backend.parse(text)
    assert result is not None
    assert (result.intent, result.entities) == (intent, entities)
    assert 0.5 < result.confidence <= 1.0


def group_command_lines(group: int) -> list[str]:
    """The command lines of every process in a process group, as `ps` shows them."""
    lines = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[2]) == group:
                lines.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return lines


def test_the_token_is_in_no_command_line_and_no_log(
    server: RasaServer, backend: RasaBackend, caplog: pytest.LogCaptureFixture
) -> None:
    """`ps` shows every user the arguments; the token goes by environment. A failed
    parse logs no URL (httpx's error names it, with the token)."""
    pid = server.pid
    assert pid is not None
    lines = group_command_lines(pid)
    assert any("rasa_launch.py" in line for line in lines)
    assert not [line for line in lines if server.token in line]
    token = server.token
    server.token = "not-the-token-" + token[:6]  # a refused parse: HTTP 401
    try:
        with caplog.at_level("WARNING"):
            assert backend.parse("whats my balance") is None
    finally:
        server.token = token
    assert "Rasa parse failed" in caplog.text
    assert "not-the-token-" not in caplog.text and "token=" not in caplog.text
    assert token not in server.log_file.read_text(errors="replace")


def test_parse_gives_none_for_blank_text(backend: RasaBackend) -> None:
    assert backend.parse("  ") is None


def test_parse_gives_none_when_rasa_does_not_answer_in_time(
    server: RasaServer, backend: RasaBackend
) -> None:
    pid = server.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        assert server.is_ready  # a hung Rasa still looks alive; the timeout catches it
        assert backend.parse("whats my balance") is None
    finally:
        os.kill(pid, signal.SIGCONT)
    assert backend.parse("whats my balance") is not None


def test_watchdog_restarts_a_killed_rasa(server: RasaServer, backend: RasaBackend) -> None:
    killed = server.pid
    assert killed is not None
    os.kill(killed, signal.SIGKILL)
    assert wait_for(lambda: not server.is_ready, 5.0)
    assert backend.parse("whats my balance") is None

    assert wait_for(lambda: server.is_ready, READY_TIMEOUT_S + 5.0), log_tail(server)
    assert server.pid not in (None, killed)
    result = backend.parse("send 500 to ravi")
    assert result is not None and result.intent == "send_money"


def test_stop_leaves_no_process(model: Path) -> None:
    with running(RasaServer(settings())) as rasa:
        pid = rasa.pid
        assert pid is not None
        rasa.stop()
        assert not rasa.is_ready and rasa.pid is None
        assert not alive(pid)
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)  # nothing left in its process group either


def test_rasa_dies_with_a_killed_server(model: Path) -> None:
    """SIGKILL gives the server no chance to stop Rasa; the parent-death signal does it."""
    rasa_settings = settings()
    script = (
        "import time\n"
        "from nlu.rasa import RasaServer, RasaSettings\n"
        f"server = RasaServer(RasaSettings.model_validate({rasa_settings.model_dump()!r}))\n"
        "server.start()\n"
        "while server.pid is None: time.sleep(0.01)\n"
        "print(server.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        # The launcher asks for the parent-death signal before it imports skops and numpy.
        assert wait_for(lambda: "numpy" in mapped_files(child), 30.0)
    finally:
        parent.kill()
        parent.wait()
    assert wait_for(lambda: not alive(child), 10.0)
    RasaServer(rasa_settings).log_file.unlink()


def test_parse_gives_none_before_start(model: Path) -> None:
    client = RasaBackend(RasaServer(settings()))
    assert client.parse("whats my balance") is None
    client.close()


def test_missing_model_names_the_expected_file(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rasa_train, "MODEL_DIR", tmp_path)
    expected = tmp_path / model.name
    with pytest.raises(RasaSetupError, match=re.escape(str(expected))):
        RasaServer(settings())


@contextmanager
def shared_rasa(port: int, token: str) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m nlu.rasa_serve` (make rasa-server): a Rasa that no server process owns."""
    process = subprocess.Popen(
        [sys.executable, "-m", "nlu.rasa_serve", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "BANKBOT_RASA__TOKEN": token},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_shared_rasa_is_used_and_watched_not_owned(model: Path) -> None:
    port, token = free_port(), "a-token-for-the-shared-rasa"
    url = f"http://127.0.0.1:{port}"
    shared = SharedRasa(settings().model_copy(update={"url": url, "token": token}))
    stranger = SharedRasa(settings().model_copy(update={"url": url, "token": "wrong"}))
    client = RasaBackend(shared)
    with shared_rasa(port, token) as process:
        shared.start()
        stranger.start()
        try:
            assert wait_for(lambda: shared.is_ready, READY_TIMEOUT_S)
            assert shared.model_name == model.name and shared.pid is None
            result = client.parse("send 500 to ravi")
            assert result is not None and result.intent == "send_money"
            assert not stranger.is_ready  # the token is checked
            process.terminate()
            process.wait(timeout=30)
            assert wait_for(lambda: not shared.is_ready, 5.0)  # seen gone, not restarted
            assert client.parse("send 500 to ravi") is None
        finally:
            shared.stop()
            stranger.stop()
            client.close()
