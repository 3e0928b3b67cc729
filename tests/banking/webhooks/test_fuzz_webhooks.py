"""Fuzzing the webhook routes with a user's token, on PostgreSQL (which refuses a NUL in
text): schemathesis sends generated requests to a real server process; none may get a 5xx.

tests/test_fuzz.py fuzzes every operation without a token, which reaches only the 401s.
"""

import subprocess
import sys
from pathlib import Path

from tests.conftest import NO_LIMITS, RULES_ONLY, VOICE_OFF, free_port
from tests.test_server import bearer_of, running_server, wait_for

MAX_EXAMPLES = 50


def test_no_generated_webhook_request_gets_a_server_error(
    tmp_path: Path, postgres_url: str
) -> None:
    env = {
        **RULES_ONLY,
        **VOICE_OFF,
        **NO_LIMITS,
        "BANKBOT_LOG_LEVEL": "warning",  # nobody reads the pipe: keep it from filling up
        "BANKBOT_WEBHOOKS__ALLOWED_PRIVATE_HOSTS": "[127.0.0.1]",
        "BANKBOT_WEBHOOKS__MAX_SUBSCRIPTIONS_PER_USER": "1000",
        "DATABASE_URL": postgres_url,
    }
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running_server(["--port", str(port)], env) as process:
        wait_for(f"{base}/health", process)
        authorization = bearer_of(base)["Authorization"]
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "run",
                f"{base}/openapi.json",
                "--include-path-regex=^/api/v1/webhooks",
                f"--header=Authorization:{authorization}",
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
    assert "/api/v1/webhooks" in run.stdout
