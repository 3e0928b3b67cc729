"""A real server with the voice channel on, listening on a real socket, shared by a module."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI

from server import create_app
from tests.conftest import serving as serving_app
from tests.conftest import settings_for


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
    with serving(tmp_path_factory.mktemp("voice"), {"BANKBOT_DEMO_MODE": "true"}) as server:
        yield server


@pytest.fixture(scope="module")
def secured_voice_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceServer]:
    """As configured by default: tokens required."""
    with serving(tmp_path_factory.mktemp("voice"), {}) as server:
        yield server


@contextmanager
def serving(directory: Path, environ: dict[str, str]) -> Iterator[VoiceServer]:
    """The app with the voice channel on, its database in `directory`, on a free port,
    once its speech models are warm (tests/voice/screenshots.py uses it outside pytest)."""
    app = create_app(
        settings_for(f"sqlite:///{directory / 'bank.db'}", BANKBOT_VOICE__ENABLED="true", **environ)
    )
    with serving_app(app) as base_url:
        deadline = time.monotonic() + 60
        while not app.state.services.voice.warm.is_set():
            assert time.monotonic() < deadline, "the voice models did not warm up in 60 s"
            time.sleep(0.1)
        yield VoiceServer(app, base_url)
