"""The whole cascade (rules → embedding → Rasa → LLM) inside the real app, with real models."""

import os
import signal
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from nlu.pipeline import Pipeline
from nlu.stages import LLMStage, RasaStage
from server import create_app
from tests.conftest import free_port, logged_in, settings_for

# The embedding stage embeds data/nlu.yml on its first start (~40 s CPU, then cached) while
# the LLM and Rasa load: a loaded machine needs minutes.
READY_WITHIN_S = 300


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    database = tmp_path_factory.mktemp("cascade") / "bank.db"
    settings = settings_for(
        f"sqlite:///{database}",
        BANKBOT_NLU__BACKENDS="[rules, embedding, rasa, llm]",
        BANKBOT_RASA__PORT=str(free_port()),
    )
    with TestClient(create_app(settings)) as test_client:
        deadline = time.monotonic() + READY_WITHIN_S
        while test_client.get("/health").json()["status"] != "healthy":
            assert time.monotonic() < deadline, test_client.get("/health").json()
            time.sleep(0.5)
        # Requests come from user 1, made an admin for the /admin routes.
        test_client.app.state.services.bank.users.grant("john@example.com", "admin")
        yield logged_in(test_client, 1)


def pipeline(client: TestClient) -> Pipeline:
    return client.app.state.services.dialogue.pipeline


def stage(client: TestClient, kind: type):
    return next(s for s in pipeline(client).stages if isinstance(s, kind))


def reached(client: TestClient, text: str) -> tuple[dict, dict[str, int]]:
    """The /test-nlu result, and how many times each stage was asked for it."""
    before = {name: s.requests_today for name, s in pipeline(client).stats.items()}
    result = client.post("/test-nlu", json={"message": text}).json()["result"]
    after = {name: s.requests_today for name, s in pipeline(client).stats.items()}
    return result, {name: after[name] - before[name] for name in after}


def test_health_is_healthy_with_every_stage(client: TestClient) -> None:
    assert client.get("/health").json() == {
        "status": "healthy",
        "service": "voice-banking-assistant",
    }


def test_a_sure_rule_stops_the_cascade(client: TestClient) -> None:
    result, asked = reached(client, "send 500 to ravi")
    assert (result["intent"], result["source"], result["amount"]) == ("send_money", "rules", 500)
    assert asked == {"rules": 1, "embedding": 0, "rasa": 0, "llm": 0}


def test_a_missing_slot_asks_rasa_but_not_the_llm(client: TestClient) -> None:
    result, asked = reached(client, "send 500")
    assert (result["intent"], result["source"], result["receiver"]) == ("send_money", "rules", None)
    assert asked == {"rules": 1, "embedding": 0, "rasa": 1, "llm": 0}


def test_a_paraphrase_is_read_by_the_embedding_stage(client: TestClient) -> None:
    result, asked = reached(client, "could you move five hundred bucks over to ravi")
    assert (result["intent"], result["source"]) == ("send_money", "embedding")
    assert (result["amount"], result["receiver"]) == (500, "ravi")
    assert asked == {"rules": 1, "embedding": 1, "rasa": 0, "llm": 0}


@pytest.mark.parametrize(
    "message",
    ["transfer my phone contacts to the new sim card", "please send me my tax certificate"],
)
def test_money_words_in_no_banking_request_are_read_by_the_examples(
    client: TestClient, message: str
) -> None:
    """The rules read a transfer or a statement into these; the nearest examples give that
    reading almost nothing, so the embedding stage decides, before Rasa and the LLM."""
    result, asked = reached(client, message)
    assert (result["intent"], result["source"]) == ("unknown", "embedding")
    assert asked == {"rules": 1, "embedding": 1, "rasa": 0, "llm": 0}


def test_a_long_command_stays_with_the_rules(client: TestClient) -> None:
    result, asked = reached(client, "please send five hundred rupees to ravi right now")
    assert (result["intent"], result["source"], result["amount"]) == ("send_money", "rules", 500)
    assert asked == {"rules": 1, "embedding": 0, "rasa": 0, "llm": 0}


def test_a_balance_question_without_balance_words(client: TestClient) -> None:
    result, asked = reached(client, "what does my account look like money wise")
    assert (result["intent"], result["source"]) == ("check_balance", "embedding")
    assert asked == {"rules": 1, "embedding": 1, "rasa": 0, "llm": 0}


@pytest.mark.parametrize(
    "message",
    [
        "there is a transaction on my account i don't recognise",
        "please reverse my transaction",
        "i was charged twice for the same thing",
        "someone made a card payment from my account that wasn't me",
        "why is there a direct debit from my account i never set up",
    ],
)
def test_a_disputed_transaction_is_never_read_out(client: TestClient, message: str) -> None:
    reply = client.post("/assistant", json={"user_id": 1, "message": message}).json()
    assert "Your recent transactions" not in reply["reply"]
    assert reply["page"] != "statements"
    assert "report it as fraud" in reply["reply"]


@pytest.mark.parametrize(
    "message", ["what's the weather in paris tomorrow", "how do i order a new debit card"]
)
def test_out_of_scope_is_decided_before_the_llm(client: TestClient, message: str) -> None:
    result, asked = reached(client, message)
    assert (result["intent"], result["source"]) == ("unknown", "embedding")
    assert asked["llm"] == 0


def test_a_spending_paraphrase_is_rasas_with_the_rules_slots(client: TestClient) -> None:
    thresholds = pipeline(client).settings.thresholds
    thresholds["embedding"] = 1.01  # no embedding reading is sure now: Rasa decides
    try:
        result, asked = reached(client, "what were my outgoings on groceries last month")
        reply = client.post(
            "/assistant",
            json={"user_id": 1, "message": "what were my outgoings on groceries last month"},
        ).json()
    finally:
        thresholds["embedding"] = 0.6
    assert (result["intent"], result["source"]) == ("check_spending", "rasa")
    assert (result["category"], result["period"]) == ("groceries", "last_month")
    assert asked == {"rules": 1, "embedding": 1, "rasa": 1, "llm": 0}
    assert reply["reply"] == "You spent nothing on groceries last month."  # John's history
    assert reply["source"] == "rasa"


def test_an_unsure_rasa_falls_through_to_the_llm(client: TestClient) -> None:
    thresholds = pipeline(client).settings.thresholds
    thresholds["rasa"] = thresholds["embedding"] = 1.01  # neither is sure now
    try:
        result, asked = reached(client, "could you move five hundred bucks over to ravi")
    finally:
        thresholds["rasa"] = thresholds["embedding"] = 0.6
    assert (result["intent"], result["source"]) == ("send_money", "llm")
    assert (result["amount"], result["receiver"]) == (500, "ravi")
    assert asked == {"rules": 1, "embedding": 1, "rasa": 1, "llm": 1}


def test_out_of_scope_gets_the_not_sure_reply(client: TestClient) -> None:
    reply = client.post("/assistant", json={"user_id": 1, "message": "tell me a joke"}).json()
    assert reply["reply"].startswith("I'm not sure what you want to do.")
    assert reply["data"] == {"require_password": False}


def test_the_llm_time_budget_bounds_the_turn(client: TestClient) -> None:
    llm = stage(client, LLMStage)
    backend = llm._backend
    normal = backend.settings
    backend.settings = normal.model_copy(update={"time_budget_s": 0.01})
    thresholds = pipeline(client).settings.thresholds
    thresholds["rasa"] = thresholds["embedding"] = 1.01  # so that the LLM is asked
    try:
        started = time.monotonic()
        result, asked = reached(client, "could you move five hundred bucks over to ravi")
        elapsed = time.monotonic() - started
    finally:
        backend.settings = normal
        thresholds["rasa"] = thresholds["embedding"] = 0.6
    assert asked["llm"] == 1
    assert result["source"] != "llm"
    assert elapsed < 1.5  # a normal LLM call takes ~1.4 s or more here


def test_admin_lists_the_stages_and_models(client: TestClient) -> None:
    models = {m["id"]: m for m in client.get("/admin/models").json()["models"]}
    assert models["rules"]["status"] == "active"
    assert models["rasa"]["status"] == "active"
    assert models["qwen2.5-coder-0.5b-instruct-q4_k_m"]["status"] == "active"
    assert models["rules"]["daily_requests"] > 0


def test_admin_switch(client: TestClient) -> None:
    missing = client.post("/admin/models/no-such-model/switch")
    assert missing.status_code == 404
    switched = client.post("/admin/models/qwen2.5-coder-0.5b-instruct-q4_k_m/switch")
    assert switched.status_code == 200
    body = switched.json()
    assert body["status"] == "success"
    assert body["previous_model"] == body["current_model"] == "qwen2.5-coder-0.5b-instruct-q4_k_m"
    result, _ = reached(client, "could you move five hundred bucks over to ravi")
    assert (result["intent"], result["amount"], result["receiver"]) == ("send_money", 500, "ravi")


def test_rasa_down_degrades_and_the_assistant_still_answers(client: TestClient) -> None:
    rasa = stage(client, RasaStage)
    os.kill(rasa.server.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while client.get("/health").json()["status"] != "degraded":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert "rasa" in client.get("/health").json()["degraded"]
    detailed = client.get("/health/detailed").json()
    assert detailed["status"] == "degraded"
    assert detailed["components"]["rasa"]["status"] in ("down", "starting")  # restarting
    reply = client.post("/assistant", json={"user_id": 1, "message": "check my balance"})
    assert reply.json()["reply"] == "Your current account balance is ₹10000"
    deadline = time.monotonic() + READY_WITHIN_S  # the watchdog brings it back
    while client.get("/health").json()["status"] != "healthy":
        assert time.monotonic() < deadline
        time.sleep(0.5)


def test_detailed_health_probes_rasa_and_the_llm_and_metrics_name_the_deciding_stage(
    client: TestClient,
) -> None:
    before = client.get("/metrics").text
    thresholds = pipeline(client).settings.thresholds
    thresholds["rasa"] = thresholds["embedding"] = 1.01  # the LLM is asked
    try:
        chat = client.post("/api/ai/chat", json={"message": "could you move 500 bucks to ravi"})
    finally:
        thresholds["rasa"] = thresholds["embedding"] = 0.6
    body = client.get("/health/detailed").json()
    after = client.get("/metrics").text
    llm, rasa = stage(client, LLMStage), stage(client, RasaStage)
    rasa_part, llm_part = body["components"]["rasa"], body["components"]["llm"]
    assert rasa_part["status"] == "healthy" and rasa_part["latency_ms"] > 0
    assert rasa_part["model"] == rasa.server.model_name
    assert llm_part["status"] == "healthy" and llm_part["loaded"] is True
    assert llm_part["model_name"] == llm.model_id and llm_part["latency_ms"] > 0
    assert llm_part["inference_latency_ms"] > 0  # the median of real calls, this one included

    def sample(text: str, name: str, label: str, value: str) -> float:
        return sum(
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == name and s.labels.get(label) == value
        )

    calls = "bankbot_nlu_stage_duration_seconds_count"
    assert sample(after, calls, "stage", "llm") == sample(before, calls, "stage", "llm") + 1
    # The LLM decides, unless it ran out of its time budget (a loaded machine): then Rasa's
    # unsure reading stands. The metadata and the metrics name the same stage.
    model_used = chat.json()["metadata"]["model_used"]
    source = {
        llm.model_id: "llm",
        f"rasa:{rasa.server.model_name}": "rasa",
        "embedding": "embedding",
    }[model_used]
    decisions = "bankbot_nlu_decisions_total"
    moved = sample(after, decisions, "source", source) - sample(before, decisions, "source", source)
    assert moved == 1


def test_a_bare_answer_in_a_conversation_stays_with_the_rules(client: TestClient) -> None:
    """ "ravi" and "300" answer the transfer's questions; no slower stage is asked."""

    def turn(message: str) -> tuple[dict, dict[str, int]]:
        before = {name: s.requests_today for name, s in pipeline(client).stats.items()}
        body = {"user_id": 1, "message": message, "session_id": "bare-answers"}
        reply = client.post("/assistant", json=body).json()
        after = {name: s.requests_today for name, s in pipeline(client).stats.items()}
        return reply, {name: after[name] - before[name] for name in after}

    turn("I want to send money")
    reply, asked = turn("ravi")
    assert (reply["reply"], asked) == (
        "How much should I send to Ravi?",
        {"rules": 1, "embedding": 0, "rasa": 0, "llm": 0},
    )
    reply, asked = turn("300")
    assert reply["data"]["awaiting"] == "password"
    assert asked == {"rules": 1, "embedding": 0, "rasa": 0, "llm": 0}
    # Outside a conversation the same word goes down the cascade.
    assert reached(client, "300")[1]["embedding"] == 1
    turn("cancel")
