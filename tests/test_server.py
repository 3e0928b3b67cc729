"""`python server.py` as a real process: flags, config file and environment overrides."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import yaml

from server import ConfigError, load_settings
from tests.conftest import RULES_ONLY, free_port

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def running_server(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen]:
    process = subprocess.Popen(
        [sys.executable, "server.py", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=20)


def wait_for(url: str, process: subprocess.Popen, seconds: float = 30) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {process.stdout.read()}")
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"no answer from {url} in {seconds} s")


def log_in(base: str, email: str = "john@example.com") -> dict[str, str]:
    """A demo user's tokens from the running server's login form."""
    form = {"username": email, "password": "password123"}
    response = httpx.post(f"{base}/api/auth/login", data=form, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def bearer_of(base: str, email: str = "john@example.com") -> dict[str, str]:
    return {"Authorization": f"Bearer {log_in(base, email)['access_token']}"}


def test_serves_with_host_port_and_database_url(tmp_path: Path) -> None:
    """The default configuration: the whole cascade, Rasa as a child process."""
    port = free_port()
    database = tmp_path / "served.db"
    env = {"DATABASE_URL": f"sqlite:///{database}"}  # Rasa on a free port of its own
    base = f"http://127.0.0.1:{port}"
    with running_server(["--host", "127.0.0.1", "--port", str(port)], env) as process:
        health = wait_for(f"{base}/health", process)
        assert health.json()["status"] in ("degraded", "healthy")  # serving while models load
        deadline = time.monotonic() + 120
        while (health := httpx.get(f"{base}/health").json())["status"] != "healthy":
            assert time.monotonic() < deadline, health
            time.sleep(0.5)
        assert health == {"status": "healthy", "service": "voice-banking-assistant"}
        reply = httpx.post(
            f"{base}/assistant",
            json={"user_id": 1, "message": "Check my balance", "password": None},
            headers=bearer_of(base),
        )
        assert reply.json()["reply"] == "Your current account balance is ₹10000"
    assert database.exists()


def test_config_file_and_single_key_overrides(tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["service_name"] = "from-config-file"
    config["server"]["port"] = free_port()
    config["database_url"] = f"sqlite:///{tmp_path / 'other.db'}"
    config_file = tmp_path / "custom.yaml"
    config_file.write_text(yaml.safe_dump(config))
    env = {
        "BANKBOT_CONFIG": str(config_file),
        "BANKBOT_ASSISTANT__MAX_TRANSFER_RUPEES": "100",
        **RULES_ONLY,
    }
    with running_server([], env) as process:
        base = f"http://127.0.0.1:{config['server']['port']}"
        assert wait_for(f"{base}/health", process).json()["service"] == "from-config-file"
        reply = httpx.post(
            f"{base}/assistant",
            json={"user_id": 1, "message": "send 500 to ravi"},
            headers=bearer_of(base),
        ).json()
        assert reply["reply"] == "The most I can send in one transfer is ₹100."


def test_flag_config_beats_environment(tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["service_name"] = "flagged"
    flagged = tmp_path / "flagged.yaml"
    flagged.write_text(yaml.safe_dump(config))
    settings = load_settings(flagged, environ={"BANKBOT_CONFIG": "/nonexistent.yaml"})
    assert settings.service_name == "flagged"


def test_environment_values_are_typed() -> None:
    settings = load_settings(environ={"BANKBOT_SERVER__PORT": "9123", "BANKBOT_DEMO_DATA": "false"})
    assert (settings.server.port, settings.demo_data) == (9123, False)


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"BANKBOT_NO_SUCH_KEY": "1"}, "no_such_key"),
        ({"BANKBOT_SERVER__PORT": "eighty"}, "port"),
        ({"BANKBOT_CONFIG": "/nonexistent/bankbot.yaml"}, "/nonexistent/bankbot.yaml"),
    ],
)
def test_bad_settings_are_named(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(environ=environ)


def test_bad_setting_stops_the_server_with_a_clear_message() -> None:
    result = subprocess.run(
        [sys.executable, "server.py"],
        cwd=ROOT,
        env={**os.environ, "BANKBOT_SERVER__PORT": "eighty"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "bankbot: invalid settings" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_model_stops_the_server_naming_it() -> None:
    result = subprocess.run(
        [sys.executable, "server.py"],
        cwd=ROOT,
        env={**os.environ, "BANKBOT_NLU__BACKENDS": "[rules, llm]", "BANKBOT_LLM__MODEL": "gone"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "bankbot: model 'gone' is not in" in result.stderr
    assert "manifest.yaml" in result.stderr
    assert "Traceback" not in result.stderr
