"""Conversation stories: dialogues written as data (stories/*.yaml), run through the real app.

Each story gets its own app (server.create_app with the rules-only NLU of
tests.conftest.settings_for, plus the story's BANKBOT_* `environment`), a fresh SQLite
database with the demo users, and a fresh session_id. The fresh database is a copy of one
that the app seeded once for this module: seeding hashes the demo password with bcrypt
(~0.3 s), which every story would otherwise pay again. A story:

    name: unique, the pytest id
    user: 1                  # optional, the user who speaks (a step may override it)
    session: true            # optional; false sends no session_id: the documented API
    environment: {}          # optional BANKBOT_* settings for this story's app
    xfail: reason            # optional: the behaviour written is the right one, the code
                             # does not do it yet (pytest.mark.xfail, strict)
    steps:
      - say: message         # POST /assistant
        password: ...        # optional
        user: 2              # optional
        intent: unknown      # the NLU's reading of the sentence alone (POST /test-nlu)
        reply: fragment      # or a list; each must appear in the reply
        not_in_reply: "₹"    # or a list; none may appear
        page: transfer       # the reply's page (null allowed)
        data: {awaiting: amount}   # these fields of data must match
        balances: {1: -500, 3: 500}  # rupees this step moved; every other demo user: 0
        status: 404          # HTTP status, 200 unless told
      - wait: 1.5            # seconds, e.g. for a transfer to time out

Whatever the story says, two things are checked on every step: the password sent is not
anywhere in the response, and a conversation's reply has no "₹" (it is spoken aloud).
"""

import sqlite3
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from server import create_app
from tests.conftest import bearer, settings_for

STORIES_DIR = Path(__file__).parent / "stories"
DEMO_USERS = (1, 2, 3, 4, 5)
MIN_STORIES = 45
STORY_KEYS = frozenset({"name", "user", "session", "environment", "xfail", "steps"})
EXPECTATIONS = frozenset({"intent", "reply", "not_in_reply", "page", "data", "balances", "status"})
STEP_KEYS = EXPECTATIONS | {"say", "password", "user"}


def load_stories() -> list[dict[str, Any]]:
    """Every story of every file, each with the name of its file under `file`."""
    stories = []
    for path in sorted(STORIES_DIR.glob("*.yaml")):
        for story in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            stories.append({**story, "file": path.name})
    return stories


STORIES = load_stories()


def _param(story: dict[str, Any]) -> Any:
    marks = []
    if story.get("xfail"):
        marks.append(pytest.mark.xfail(strict=True, reason=str(story["xfail"])))
    return pytest.param(story, id=str(story.get("name")), marks=marks)


def _fragments(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _paise(rupees: int | float | str) -> int:
    return int(Decimal(str(rupees)) * 100)


def _rupees(paise_by_user: dict[int, int]) -> dict[int, str]:
    return {user: str(Decimal(paise) / 100) for user, paise in paise_by_user.items()}


def _balances(client: TestClient) -> dict[int, int]:
    ledger = client.app.state.services.dialogue.assistant.ledger
    return {user: ledger.balance(user) for user in DEMO_USERS}


def _expects(step: dict[str, Any], key: str) -> bool:
    """Whether the step checks `key`: `page: null` and `balances: {}` do, `reply: []` not."""
    if key not in step:
        return False
    return key in ("page", "balances") or step[key] not in (None, "", [], {})


def _problems_in(story: dict[str, Any], step: dict[str, Any], step_number: int) -> list[str]:
    """What is wrong with one step as written: unknown keys, nothing expected."""
    problems = []
    where = f"{story['file']}: story {story.get('name')!r}, step {step_number}"
    if "wait" in step:
        if set(step) != {"wait"} or not isinstance(step["wait"], int | float):
            problems.append(f"{where}: a wait step holds only `wait: <seconds>`")
        return problems
    if not isinstance(step.get("say"), str) or not step["say"].strip():
        problems.append(f"{where}: no `say`")
    unknown = set(step) - STEP_KEYS
    if unknown:
        problems.append(f"{where}: unknown keys {sorted(unknown)}")
    if not any(_expects(step, key) for key in EXPECTATIONS):
        problems.append(f"{where}: expects nothing")
    for user in step.get("balances") or {}:
        if user not in DEMO_USERS:
            problems.append(f"{where}: balances of {user!r}, not a demo user")
    return problems


def test_story_files_hold_enough_well_formed_stories() -> None:
    assert len(STORIES) >= MIN_STORIES, f"only {len(STORIES)} stories in {STORIES_DIR}"
    names = [story.get("name") for story in STORIES]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    assert not duplicates, f"story names used twice: {duplicates}"
    problems = []
    for story in STORIES:
        where = f"{story['file']}: story {story.get('name')!r}"
        if not isinstance(story.get("name"), str) or not story["name"]:
            problems.append(f"{where}: no name")
        unknown = set(story) - STORY_KEYS - {"file"}
        if unknown:
            problems.append(f"{where}: unknown keys {sorted(unknown)}")
        if "xfail" in story and not str(story["xfail"] or "").strip():
            problems.append(f"{where}: xfail without a reason")
        for key in story.get("environment") or {}:
            if not str(key).startswith("BANKBOT_"):
                problems.append(f"{where}: environment key {key!r} is not a BANKBOT_* setting")
        steps = story.get("steps") or []
        if not any("say" in step for step in steps):
            problems.append(f"{where}: no steps that say anything")
        for number, step in enumerate(steps, 1):
            problems += _problems_in(story, step, number)
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def seeded_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database as the app leaves it after its first start: the demo users, seeded."""
    path = tmp_path_factory.mktemp("seeded") / "bank.db"
    with TestClient(create_app(settings_for(f"sqlite:///{path}"))):
        pass
    return path


def _fresh_copy(seeded: Path, directory: Path) -> str:
    """A database of the story's own, as freshly seeded; its SQLAlchemy URL."""
    path = directory / "bank.db"
    source, target = sqlite3.connect(seeded), sqlite3.connect(path)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    return f"sqlite:///{path}"


@pytest.mark.parametrize("story", [_param(story) for story in STORIES])
def test_story(story: dict[str, Any], seeded_database: Path, tmp_path: Path) -> None:
    malformed = [
        problem
        for number, step in enumerate(story["steps"], 1)
        for problem in _problems_in(story, step, number)
    ]
    assert not malformed, "\n".join(malformed)
    environment = {key: str(value) for key, value in (story.get("environment") or {}).items()}
    database_url = _fresh_copy(seeded_database, tmp_path)
    session_id = uuid.uuid4().hex
    with TestClient(create_app(settings_for(database_url, **environment))) as client:
        for number, step in enumerate(story["steps"], 1):
            if "wait" in step:
                time.sleep(step["wait"])
                continue
            _run_step(client, story, step, number, session_id)


def _run_step(
    client: TestClient, story: dict[str, Any], step: dict[str, Any], number: int, session_id: str
) -> None:
    message, password = step["say"], step.get("password")
    body: dict[str, Any] = {
        "user_id": step.get("user", story.get("user", 1)),
        "message": message,
        "password": password,
    }
    in_session = story.get("session", True)
    if in_session:
        body["session_id"] = session_id
    before = _balances(client)
    # The step's user speaks with their own access token (a user who does not exist too:
    # such a token gets the documented "User not found").
    response = client.post("/assistant", json=body, headers=bearer(client, body["user_id"]))
    after = _balances(client)
    answer = response.json()
    reply = str(answer.get("reply"))
    data = answer.get("data") or {}
    problems = []

    if response.status_code != step.get("status", 200):
        problems.append(f"status: expected {step.get('status', 200)}, got {response.status_code}")
    if "intent" in step:
        reading = client.post("/test-nlu", json={"message": message}).json()["result"]
        if reading["intent"] != step["intent"]:
            problems.append(f"intent: expected {step['intent']!r}, NLU read {reading!r}")
    for fragment in _fragments(step.get("reply", [])):
        if fragment not in reply:
            problems.append(f"reply: expected to contain {fragment!r}")
    for fragment in _fragments(step.get("not_in_reply", [])):
        if fragment in reply:
            problems.append(f"not_in_reply: {fragment!r} is in the reply")
    if "page" in step and answer.get("page") != step["page"]:
        problems.append(f"page: expected {step['page']!r}, got {answer.get('page')!r}")
    for key, expected in (step.get("data") or {}).items():
        if key not in data:
            problems.append(f"data.{key}: expected {expected!r}, missing from {data!r}")
        elif data[key] != expected:
            problems.append(f"data.{key}: expected {expected!r}, got {data[key]!r}")
    if "balances" in step:
        expected_moves = {user: _paise(step["balances"].get(user, 0)) for user in DEMO_USERS}
        moves = {user: after[user] - before[user] for user in DEMO_USERS}
        if moves != expected_moves:
            problems.append(
                f"balances (rupees moved per user): expected {_rupees(expected_moves)}, "
                f"got {_rupees(moves)}"
            )
    if password and password in response.text:
        problems.append("the password appears in the response")
    if in_session and "₹" in reply:
        problems.append("a conversation reply says '₹' (it is spoken: '500 rupees')")

    if problems:
        pytest.fail(
            f"story {story['name']!r} ({story['file']}), step {number}, "
            f"user says {message!r}"
            + (" with a password" if password else "")
            + ":\n  - "
            + "\n  - ".join(problems)
            + f"\n  actual reply: {reply!r}\n  page: {answer.get('page')!r}, data: {data!r}",
            pytrace=False,
        )
