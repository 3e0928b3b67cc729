"""A password typed as a chat message while a transfer waits for it is checked as the
password field's is: under the lockout, counted, with its `password.failed` event, and
the transfer dropped. Over the chat WebSocket of the real app on a real socket."""

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from websockets.sync.client import ClientConnection, connect

from server import create_app
from tests.conftest import serving, settings_for

PASSWORD = "password123"  # every demo user's (data/demo_users.yaml)
GUESSES = ["hunter", "letmein", "qwerty", "dragon", "sunshine"]  # five: the lockout's


@pytest.fixture
def live(sqlite_url: str) -> Iterator[tuple[FastAPI, str]]:
    app = create_app(settings_for(sqlite_url))
    with serving(app) as base_url:
        yield app, base_url


def say(chat: ClientConnection, message: str, password: str | None = None) -> dict[str, Any]:
    """The assistant's whole answer to one chat message: its text and its chat_end."""
    chat.send(json.dumps({"type": "chat", "message": message, "password": password}))
    text = ""
    while (event := json.loads(chat.recv(timeout=30)))["type"] != "chat_end":
        assert event["type"] in ("chat_start", "chat_chunk"), event
        text += event.get("content", "")
    return {"reply": text, **event}


def test_passwords_typed_as_messages_count_toward_the_lockout(
    live: tuple[FastAPI, str],
) -> None:
    app, base_url = live
    token = app.state.services.bank.tokens.issue(1).access_token
    ledger = app.state.services.dialogue.assistant.ledger
    url = f"{base_url.replace('http', 'ws', 1)}/api/ai/chat/ws?token={token}"
    replies = []
    with connect(url, open_timeout=10) as chat:
        for guess in GUESSES:
            asked = say(chat, "send 100 to ravi")
            assert asked["data"]["awaiting"] == "password", asked
            replies.append(say(chat, guess))
        # The right password, in the password field, now finds transfers locked.
        right = say(chat, "send 100 to ravi", PASSWORD)
    assert [reply["reply"] for reply in replies[:4]] == [
        "Incorrect password. Transaction cancelled."
    ] * 4
    assert replies[4]["reply"].startswith("Too many wrong passwords.")
    assert all(reply["data"]["awaiting"] is None for reply in replies)  # each transfer dropped
    assert right["reply"].startswith("Too many wrong passwords.")
    assert ledger.balance(1) == 1_000_000
    failed = ledger.events.for_user(1, "password.failed")
    assert [event.payload for event in failed] == [{"channel": "chat-ws", "factor": "password"}] * 5
    assert len(ledger.events.for_user(1, "account.locked")) == 1
