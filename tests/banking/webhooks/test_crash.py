"""Real server processes: a delivery survives a server killed with SIGKILL, and two servers
sharing a database send each event once.

The receiver runs in this test process; the servers are `python server.py` subprocesses.
"""

import contextlib
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from tests.banking.webhooks.conftest import FAST, verified
from tests.banking.webhooks.receiver import receiving
from tests.conftest import NO_LIMITS, RULES_ONLY, VOICE_OFF, free_port
from tests.test_faults import PASSWORD, prepare_users
from tests.test_server import bearer_of, running_server, wait_for

QUIET = {"BANKBOT_LOG_LEVEL": "warning"}  # the servers' output goes to a pipe nobody reads


def server_env(database_url: str, **overrides: str) -> dict[str, str]:
    return {
        **RULES_ONLY,
        **VOICE_OFF,
        **NO_LIMITS,
        **QUIET,
        **FAST,
        "DATABASE_URL": database_url,
        **overrides,
    }


@contextlib.contextmanager
def serving(port: int, env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen]]:
    with running_server(["--port", str(port)], env) as process:
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/health", process)
        yield base, process


def subscribe(base: str, auth: dict[str, str], url: str) -> dict:
    response = httpx.post(
        f"{base}/api/v1/webhooks",
        json={"url": url, "events": ["transaction.completed"]},
        headers=auth,
    )
    assert response.status_code == 201, response.text
    return response.json()


def transfer(base: str, auth: dict[str, str], user_id: int = 1, to: str = "ravi") -> None:
    response = httpx.post(
        f"{base}/assistant",
        json={"user_id": user_id, "message": f"send 100 to {to}", "password": PASSWORD},
        headers=auth,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["success"] is True, response.text


def deliveries(base: str, auth: dict[str, str], subscription_id: str) -> list[dict]:
    response = httpx.get(
        f"{base}/api/v1/webhooks/{subscription_id}/deliveries?limit=100", headers=auth
    )
    assert response.status_code == 200, response.text
    return response.json()["deliveries"]


def wait_until(check: Callable[[], list[dict]], seconds: float = 30) -> list[dict]:
    deadline = time.monotonic() + seconds
    while not (result := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return result


def test_a_delivery_pending_when_the_server_is_killed_is_sent_after_restart(
    tmp_path: Path,
) -> None:
    """The receiver is down, the first attempt fails, the server dies (SIGKILL); with the
    receiver up and the server started again, the event arrives."""
    env = server_env(f"sqlite:///{tmp_path / 'bank.db'}", BANKBOT_WEBHOOKS__MAX_ATTEMPTS="50")
    receiver_port = free_port()
    url = f"http://127.0.0.1:{receiver_port}/hook"
    with serving(free_port(), env) as (base, process):
        auth = bearer_of(base)
        made = subscribe(base, auth, url)
        transfer(base, auth)
        [row] = wait_until(
            lambda: [r for r in deliveries(base, auth, made["id"]) if r["attempts"] >= 1]
        )
        assert row["status"] == "pending" and "ConnectError" in row["last_error"]
        process.kill()  # SIGKILL: no shutdown of any kind
        process.wait(timeout=10)
    with receiving(port=receiver_port) as receiver, serving(free_port(), env) as (base, _):
        [request] = receiver.wait_for(1)
        body = verified(made["secret"], request.headers, request.body)
        assert body["event_type"] == "transaction.completed"
        assert body["event_id"] == row["event_id"]
        [done] = wait_until(
            lambda: [r for r in deliveries(base, auth, made["id"]) if r["status"] == "delivered"]
        )
        assert done["attempts"] >= 2


def test_a_delivery_in_flight_when_the_server_is_killed_is_sent_again_after_its_lease(
    tmp_path: Path,
) -> None:
    """At least once: the receiver got the request but the server died before recording
    the answer, so after the lease (3 s) runs out the restarted server sends it again,
    with the same event id for the receiver to deduplicate by."""
    env = server_env(f"sqlite:///{tmp_path / 'bank.db'}", BANKBOT_WEBHOOKS__TIMEOUT_S="2")
    with receiving(script=["hang"], hang_s=5) as receiver:
        with serving(free_port(), env) as (base, process):
            auth = bearer_of(base)
            made = subscribe(base, auth, receiver.url)
            transfer(base, auth)
            receiver.wait_for(1)  # the receiver holds its answer back
            process.kill()
            process.wait(timeout=10)
        killed_at = time.monotonic()
        with serving(free_port(), env) as (base, _):
            first, second = receiver.wait_for(2)
            [done] = wait_until(
                lambda: [
                    r for r in deliveries(base, auth, made["id"]) if r["status"] == "delivered"
                ]
            )
    assert second.at - killed_at > 0  # sent by the restarted server
    assert first.body == second.body
    assert first.headers["x-webhook-event-id"] == second.headers["x-webhook-event-id"]
    verified(made["secret"], second.headers, second.body)
    assert done["attempts"] == 1  # the killed server's attempt was never recorded


def test_two_servers_sharing_a_database_send_each_event_once(postgres_url: str) -> None:
    """Both poll the outbox every 50 ms; FOR UPDATE SKIP LOCKED and the lease keep them
    from sending a row twice at once.

    An attempt may still be repeated (at least once: an answer later than the timeout on
    this busy machine is a failed attempt), but then it is recorded: every request the
    receiver got is an attempt of the row's record. A second process sending a row
    another holds would be a request more than the recorded attempts.
    """
    env = server_env(postgres_url, BANKBOT_WEBHOOKS__TIMEOUT_S="5", BANKBOT_WEBHOOKS__LEASE_S="10")
    with (
        receiving() as receiver,
        serving(free_port(), env) as (one, _),
        serving(free_port(), env) as (two, _),
    ):
        prepare_users(postgres_url)  # cheap password hashes: 30 bcrypt checks otherwise
        auth = {base: bearer_of(base) for base in (one, two)}
        made = subscribe(one, auth[one], receiver.url)
        for index in range(30):
            base = (one, two)[index % 2]
            transfer(base, auth[base])

        def all_delivered() -> list[dict]:
            rows = deliveries(one, auth[one], made["id"])
            return rows if [r["status"] for r in rows] == ["delivered"] * 30 else []

        rows = wait_until(all_delivered, seconds=60)
        time.sleep(1)  # time for a second sending of any of them
        requests = list(receiver.requests)
    assert len(requests) == sum(row["attempts"] for row in rows)
    assert {r.headers["x-webhook-event-id"] for r in requests} == {r["event_id"] for r in rows}
    for request in requests:
        verified(made["secret"], request.headers, request.body)
