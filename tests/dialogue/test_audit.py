"""Every transfer attempt leaves an audit row (append-only in the database) and one JSON log
line; the server's logs never hold a password, a full name or a contact's name."""

import json
import sqlite3
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session
from websockets.sync.client import connect

from banking import make_engine
from banking.audit import AuditLog, audit_row
from tests.conftest import NO_LIMITS, RULES_ONLY, VOICE_OFF, free_port
from tests.test_server import running_server, wait_for

PASSWORD = "password123"
GUESS = "hunter2-guess"
DEMO = Path(__file__).resolve().parents[2] / "data" / "demo_users.yaml"


def test_the_audit_table_refuses_updates_and_deletes(database_url: str) -> None:
    engine = make_engine(database_url)
    audit = AuditLog(engine)
    row = audit_row(
        user_id=1, channel="assistant", amount=100, receiver_user_id=3, receiver="Ravi",
        outcome="refused", reason="wrong_password",
    )  # fmt: skip
    audit.record(row)
    statements = ["UPDATE transfer_audit SET amount = 1", "DELETE FROM transfer_audit"]
    if engine.dialect.name == "postgresql":
        statements.append("TRUNCATE transfer_audit")
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"), Session(engine) as session:
            session.execute(text(statement))
            session.commit()
    assert [(kept.amount, kept.reason) for kept in audit.for_user(1)] == [(100, "wrong_password")]
    engine.dispose()


def test_transfers_on_every_channel_are_audited_and_logged_without_secrets(
    tmp_path: Path,
) -> None:
    database = tmp_path / "audited.db"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **RULES_ONLY,
        **VOICE_OFF,
        **NO_LIMITS,
        "BANKBOT_DEMO_MODE": "1",  # requests name their user: tokens are not the point here
        "DATABASE_URL": f"sqlite:///{database}",
    }
    with running_server(["--port", str(port)], env) as process, httpx.Client() as http:
        wait_for(f"{base}/health", process)

        def assistant(message: str, password: str) -> dict:
            body = {"user_id": 1, "message": message, "password": password}
            return http.post(f"{base}/assistant", json=body).json()

        assert assistant("send 500 to ravi", PASSWORD)["data"]["success"] is True
        assert assistant("send 500 to ravi", GUESS)["reply"].startswith("Incorrect password")
        assert assistant("send 90000 to ravi", PASSWORD)["reply"].startswith("Insufficient")

        chat = {"user_id": 1, "session_id": "audited", "message": "send 200 to mom"}
        http.post(f"{base}/api/ai/chat", json=chat)
        confirmed = http.post(
            f"{base}/api/ai/chat", json={**chat, "message": "yes", "password": PASSWORD}
        )
        assert confirmed.json()["data"]["success"] is True

        with connect(f"ws://127.0.0.1:{port}/api/ai/chat/ws?user_id=1") as socket:
            socket.send(json.dumps({"type": "chat", "message": "send 100 to jane"}))
            while json.loads(socket.recv())["type"] != "chat_end":
                pass
            socket.send(json.dumps({"type": "password", "password": PASSWORD}))
            while (event := json.loads(socket.recv()))["type"] != "chat_end":
                pass
            assert event["data"]["success"] is True

        started = http.post(f"{base}/chat/start", json={"user_id": 1}).json()
        support = {"conversation_id": started["conversation_id"]}
        http.post(f"{base}/chat/message", json={**support, "message": "send 50 to mike"})
        typed = http.post(f"{base}/chat/message", json={**support, "message": PASSWORD}).json()
        assert typed["message"].startswith("Please never say or type your password")
        http.post(f"{base}/chat/message", json={**support, "message": "send 50 to mike"})
        done = http.post(
            f"{base}/chat/message", json={**support, "message": "ok", "password": GUESS}
        )
        assert done.json()["message"].startswith("Incorrect password")
    output = process.stdout.read()

    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    transfers = [line for line in lines if line.get("event") == "transfer"]
    assert [(t["channel"], t["amount_paise"], t["receiver"], t["reason"]) for t in transfers] == [
        ("assistant", 50_000, "R***", None),
        ("assistant", 50_000, "R***", "wrong_password"),
        ("assistant", 9_000_000, "R***", "insufficient_funds"),
        ("chat", 20_000, "M***", None),
        ("chat-ws", 10_000, "J***", None),
        ("support-chat", 5_000, "M***", "wrong_password"),
    ]
    assert all(t["total_ms"] > 0 and "password_ms" in t for t in transfers)
    assert {line["channel"] for line in lines if line.get("event") == "turn"} == {
        "assistant", "chat", "chat-ws", "support-chat",
    }  # fmt: skip
    assert any(line.get("event") == "http" and line["path"] == "/assistant" for line in lines)
    secrets = [PASSWORD, GUESS, "@example.com"]
    names = ["John Doe", "Jane Smith", "Ravi Kumar", "Mary Doe", "John Michael Miller"]
    contacts = ["Ravi", "Jane", "Mom", "Mike"]
    for word in secrets + names + contacts:
        assert word not in output, word

    with sqlite3.connect(database) as stored:
        rows = stored.execute(
            "SELECT user_id, channel, amount, receiver, outcome, reason FROM transfer_audit "
            "ORDER BY id"
        ).fetchall()
    assert rows == [
        (1, "assistant", 50_000, "Ravi", "completed", None),
        (1, "assistant", 50_000, "Ravi", "refused", "wrong_password"),
        (1, "assistant", 9_000_000, "Ravi", "refused", "insufficient_funds"),
        (1, "chat", 20_000, "Mom", "completed", None),
        (1, "chat-ws", 10_000, "Jane", "completed", None),
        (1, "support-chat", 5_000, "Mike", "refused", "wrong_password"),
    ]
