"""A real server with the voice channel on, listening on a real socket, shared by a module."""

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn
from fastapi import FastAPI

from server import create_app
from tests.conftest import free_port, settings_for


@dataclass
class VoiceServer:
    app: FastAPI
    base_url: str

    def socket_url(self, user_id: int | str = 1, token: str | None = None) -> str:
        query = f"user_id={user_id}" + (f"&token={token}" if token else "")
        return f"{self.base_url.replace('http', 'ws', 1)}/ws/voice?{query}"

    def token(self, user_id: int) -> str:
        """A new access token of the user, from the app's own token service."""
        return self.app.state.services.bank.tokens.issue(user_id).access_token

    def balance(self, user_id: int) -> int:
        """The user's balance in paise, read from the ledger."""
        return self.app.state.services.dialogue.assistant.ledger.balance(user_id)


@pytest.fixture(scope="module")
def voice_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceServer]:
    """In demo mode: the user is named by `?user_id=` (tests/voice/test_voice_auth.py
    covers tokens)."""
    yield from _serve(tmp_path_factory, {"BANKBOT_DEMO_MODE": "true"})


@pytest.fixture(scope="module")
def secured_voice_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceServer]:
    """As configured by default: tokens required."""
    yield from _serve(tmp_path_factory, {})


def _serve(
    tmp_path_factory: pytest.TempPathFactory, demo_mode: dict[str, str]
) -> Iterator[VoiceServer]:
    database = tmp_path_factory.mktemp("voice") / "bank.db"
    app = create_app(
        settings_for(f"sqlite:///{database}", BANKBOT_VOICE__ENABLED="true", **demo_mode)
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=asyncio.run, args=(server.serve(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not (server.started and app.state.services.voice.warm.is_set()):
        assert time.monotonic() < deadline, "the voice server did not start in 60 s"
        time.sleep(0.1)
    yield VoiceServer(app, f"http://127.0.0.1:{port}")
    server.should_exit = True
    thread.join(timeout=20)
