"""Fuzzing: schemathesis sends generated requests to every operation of the OpenAPI schema
of a real server process; none may get a 5xx answer.

Bounded to run in about a minute here: `MAX_EXAMPLES` generated cases per operation
(the /api/v1 aliases are operations of their own), the documented examples, no shrinking.
Run through schemathesis's own command line, which prints every failure it finds.
"""

import subprocess
import sys
from pathlib import Path

from tests.conftest import NO_LIMITS, RULES_ONLY, VOICE_OFF, free_port
from tests.test_server import running_server, wait_for

MAX_EXAMPLES = 50


def test_no_generated_request_gets_a_server_error(tmp_path: Path) -> None:
    env = {
        **RULES_ONLY,
        **VOICE_OFF,
        "BANKBOT_DEMO_MODE": "1",  # requests name their user: tokens are not the point here
        **NO_LIMITS,
        "BANKBOT_LOG_LEVEL": "warning",  # nobody reads the pipe: keep it from filling up
        "DATABASE_URL": f"sqlite:///{tmp_path / 'fuzz.db'}",
    }
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running_server(["--port", str(port)], env) as process:
        wait_for(f"{base}/health", process)
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "run",
                f"{base}/openapi.json",
                "--checks=not_a_server_error",
                f"--max-examples={MAX_EXAMPLES}",
                "--phases=examples,fuzzing",
                "--no-shrink",
                "--generation-database=none",
                "--request-timeout=30",
                "--workers=1",  # hypothesis's source parsing is not thread-safe on 3.11
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
