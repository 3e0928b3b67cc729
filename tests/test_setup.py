"""What a person setting up meets: `make run`'s one-line errors for a missing Python 3.11 or
3.10, and the server's for a port already in use (tests/test_database_loss.py: for a
database it cannot use)."""

import socket
import subprocess
from pathlib import Path

from tests.test_database_loss import start
from tests.test_server import ROOT


def make(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_no_python_3_11_is_one_line_with_the_override(tmp_path: Path) -> None:
    for python in ("/nowhere/python3.11", "python3.10"):  # missing, or another version
        result = make("run", f"PYTHON={python}", f"VENV={tmp_path / 'venv'}")
        assert result.returncode != 0
        assert "==> [1/5] Python packages" in result.stdout
        said = result.stderr.splitlines()[0]
        assert said.startswith(f"bankbot setup: no Python 3.11 at '{python}'"), said
        assert said.endswith("make run PYTHON=/path/to/python3.11")
        assert not (tmp_path / "venv").exists()


def test_no_python_3_10_for_rasa_is_one_line_with_the_override(tmp_path: Path) -> None:
    venv = tmp_path / "venv-rasa"
    result = make(f"{venv}/.installed", f"RASA_VENV={venv}", "RASA_PYTHON=")
    assert result.returncode != 0
    said = result.stderr.splitlines()[0]
    assert said.startswith("bankbot setup: Rasa needs Python 3.10 and none was found"), said
    assert said.endswith("make run RASA_PYTHON=/path/to/python3.10")


def test_a_port_in_use_stops_the_server_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = start(
            DATABASE_URL=f"sqlite:///{tmp_path / 'bank.db'}", BANKBOT_SERVER__PORT=str(port)
        )
    assert result.returncode != 0
    assert result.stderr.startswith(f"bankbot: cannot listen on 127.0.0.1:{port}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "--port" in result.stderr
