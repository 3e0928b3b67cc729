"""POST /test-nlu and GET /test-nlu-get on a real socket: open to anyone, so limited per
client address, and asked in the background: a flood of them never makes a user's turn
skip the LLM (with the real model)."""

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from nlu.stages import LLMStage
from server import create_app
from tests.conftest import fresh_window, serving, settings_for

# Read by the LLM, not by the rules (tests/nlu/test_llm.py).
BALANCE_PARAPHRASE = "whats left in my account"
NOT_BANKING = "tell me a joke about ducks"


def test_each_client_address_has_the_request_limit(sqlite_url: str) -> None:
    app = create_app(settings_for(sqlite_url, BANKBOT_LIMITS__REQUESTS="3"))
    fresh_window(margin_s=20)  # the four requests in one window
    with serving(app) as base_url, httpx.Client(base_url=base_url, timeout=30) as http:
        answers = [
            http.post("/test-nlu", json={"message": "check my balance"}),
            http.get("/test-nlu-get", params={"message": "check my balance"}),
            http.post("/test-nlu", json={"message": "send 500 to ravi"}),
            http.get("/test-nlu-get", params={"message": "check my balance"}),
        ]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert answers[2].headers["X-RateLimit-Remaining"] == "0"
    refused = answers[3]
    assert refused.json()["error_code"] == "RATE_LIMIT_EXCEEDED"
    assert int(refused.headers["Retry-After"]) >= 1


@pytest.fixture(scope="module")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, str]]:
    """Rules and the LLM; a generous time budget: this is about who gets the model, not
    how fast it is on a shared CPU."""
    database = tmp_path_factory.mktemp("nlu-route") / "bank.db"
    settings = settings_for(
        f"sqlite:///{database}",
        BANKBOT_NLU__BACKENDS="[rules, llm]",
        BANKBOT_LLM__TIME_BUDGET_S="30",
    )
    app = create_app(settings)
    with serving(app) as base_url:
        llm = next(
            s for s in app.state.services.dialogue.pipeline.stages if isinstance(s, LLMStage)
        )
        assert llm.wait_until_loaded(180), "the LLM did not load in 180 s"
        yield app, base_url


def test_test_calls_never_make_a_users_turn_skip_the_llm(llm_server: tuple[FastAPI, str]) -> None:
    app, base_url = llm_server
    stats = app.state.services.dialogue.pipeline.stats["llm"]
    token = app.state.services.bank.tokens.issue(1).access_token
    stop = threading.Event()

    def flood() -> None:
        with httpx.Client(base_url=base_url, timeout=120) as http:
            while not stop.is_set():
                http.get("/test-nlu-get", params={"message": NOT_BANKING})

    flooders = [threading.Thread(target=flood, daemon=True) for _ in range(2)]
    for thread in flooders:
        thread.start()
    try:
        deadline = time.monotonic() + 60
        while stats.requests_today < 3:  # the flood has the model
            assert time.monotonic() < deadline, "the flood never reached the LLM"
            time.sleep(0.1)
        turns = []
        with httpx.Client(base_url=base_url, timeout=120) as http:
            for _ in range(3):
                answer = http.post(
                    "/assistant",
                    json={"user_id": 1, "message": BALANCE_PARAPHRASE},
                    headers={"Authorization": f"Bearer {token}"},
                )
                turns.append(answer.json())
    finally:
        stop.set()
        for thread in flooders:
            thread.join(timeout=120)
    assert [turn["source"] for turn in turns] == ["llm"] * 3, turns
    assert all(turn["page"] == "home" for turn in turns), turns  # the balance, answered
