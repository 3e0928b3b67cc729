"""POST /api/v1/accounts/{id}/transactions: a transfer by API, confirmed with the password,
through the assistant's teller (lockout, hourly limit, ledger, audit, events).

Demo data: user 1 (account 1, ₹10000) has contacts ravi (user 3), jane (2), john and mike
(5), mom (4); every other user has ₹5000. Accounts were made in user order: account n is
user n's.
"""

import concurrent.futures
import contextlib
import itertools
from collections.abc import Iterator

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, func, select

from banking import make_engine
from banking.audit import TransferAudit
from banking.idempotency import transfer_id_for
from banking.models import FraudAlert, LedgerEntry
from banking.notifications import Notification
from server import create_app
from tests.conftest import REDIS_URL, bearer, free_port, settings_for
from tests.test_faults import QUIET, check_ledger, prepare_users, total_balance
from tests.test_server import bearer_of, running_server, wait_for

PASSWORD = "password123"
PATH = "/api/v1/accounts/{}/transactions"
TO_RAVI = {"amount": 250.50, "contact": "ravi", "mfa_token": PASSWORD}
START = {1: 1_000_000, 2: 500_000, 3: 500_000, 4: 500_000, 5: 500_000}


@pytest.fixture
def client(sqlite_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(sqlite_url))) as client:
        yield client


def send(
    client: TestClient,
    body: dict,
    *,
    account: int = 1,
    user: int | None = 1,
    key: str | None = None,
) -> httpx.Response:
    headers = bearer(client, user) if user is not None else {}
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post(PATH.format(account), json=body, headers=headers)


def balances(client: TestClient) -> dict[int, int]:
    ledger = client.app.state.services.dialogue.assistant.ledger
    return {user: ledger.balance(user) for user in START}


def audit(client: TestClient, user: int = 1) -> list[tuple[str, str, str | None]]:
    with Session(client.app.state.services.dialogue.assistant.ledger.engine) as session:
        rows = session.exec(
            select(TransferAudit)
            .where(TransferAudit.user_id == user)
            .order_by(col(TransferAudit.id))
        ).all()
        return [(row.channel, row.outcome, row.reason) for row in rows]


def test_a_transfer_moves_the_money_once_and_says_so(client: TestClient) -> None:
    response = send(client, TO_RAVI)
    assert response.status_code == 201
    made = response.json()
    assert made["status"] == "completed"
    assert (made["amount"], made["currency"], made["balance_after"]) == (250.5, "INR", 9749.5)
    assert (made["from_account"], made["to_account"], made["to_name"]) == (1, 3, "Ravi")
    assert balances(client) == {**START, 1: 1_000_000 - 25_050, 3: 500_000 + 25_050}
    with Session(client.app.state.services.dialogue.assistant.ledger.engine) as session:
        entries = session.exec(
            select(LedgerEntry).where(LedgerEntry.transfer_id == made["transaction_id"])
        ).all()
    assert sorted((entry.type, entry.amount, entry.description) for entry in entries) == [
        ("credit", 25_050, "Received ₹250.50 from John"),
        ("debit", 25_050, "Sent ₹250.50 to Ravi"),
    ]
    assert audit(client) == [("api", "completed", None)]
    events = client.app.state.services.dialogue.assistant.ledger.events
    assert [event.type for event in events.for_user(1)] == ["transaction.completed"]
    assert events.for_user(1)[0].payload["channel"] == "api"
    assert [event.type for event in events.for_user(3)] == ["transaction.received"]


def test_the_receiver_by_account_id_named_as_a_contact_or_by_name(client: TestClient) -> None:
    to_jane = send(client, {"amount": 10, "destination_account": 2, "mfa_token": PASSWORD})
    assert (to_jane.status_code, to_jane.json()["to_name"]) == (201, "Jane")
    # User 4 is not among user 2's contacts: named by the account's number, not the name.
    to_mary = send(
        client, {"amount": "20", "destination_account": 4, "mfa_token": PASSWORD}, account=2, user=2
    )
    assert (to_mary.status_code, to_mary.json()["to_name"]) == (201, "Account 4")
    assert "Mary" not in to_mary.text and "Doe" not in to_mary.text
    assert to_mary.json()["balance_after"] == 4990  # ₹5000 + ₹10 - ₹20
    assert '"amount":20,' in to_mary.text  # whole rupees are JSON integers
    assert balances(client) == {**START, 1: 999_000, 2: 499_000, 4: 502_000}


def test_a_retry_with_the_same_key_pays_once_and_another_body_is_refused(
    client: TestClient,
) -> None:
    first = send(client, TO_RAVI, key="rent-2026-11")
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    retry = send(client, TO_RAVI, key="rent-2026-11")
    assert (retry.status_code, retry.json()) == (201, first.json())
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert first.json()["transaction_id"] == transfer_id_for(1, "rent-2026-11")
    other = send(client, {**TO_RAVI, "amount": 300}, key="rent-2026-11")
    assert other.status_code == 422
    assert other.json()["error_code"] == "IDEMPOTENCY_KEY_REUSED"
    assert balances(client)[1] == 1_000_000 - 25_050
    assert audit(client) == [("api", "completed", None)]


def test_concurrent_retries_with_one_key_pay_once(client: TestClient) -> None:
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: send(client, TO_RAVI, key="once"), range(6)))
    codes = sorted(answer.status_code for answer in answers)
    assert codes.count(201) >= 1 and set(codes) <= {201, 409}, codes
    assert balances(client)[1] == 1_000_000 - 25_050


def test_a_refused_request_is_not_kept_under_its_key(client: TestClient) -> None:
    wrong = send(client, {**TO_RAVI, "mfa_token": "typo"}, key="pay-ravi")
    assert wrong.status_code == 403
    right = send(client, TO_RAVI, key="pay-ravi")
    assert right.status_code == 201 and "Idempotent-Replayed" not in right.headers
    assert balances(client)[1] == 1_000_000 - 25_050


def test_a_wrong_password_moves_nothing_and_counts_toward_the_shared_lockout(
    client: TestClient,
) -> None:
    wrong = send(client, {**TO_RAVI, "mfa_token": "guess"})
    assert wrong.status_code == 403
    assert wrong.json() == {
        "status": "error",
        "error_code": "INVALID_SECOND_FACTOR",
        "message": "Incorrect password. Transaction cancelled.",
        "details": {"field": "mfa_token", "reason": "wrong_password"},
    }
    assert "guess" not in wrong.text
    # Wrong passwords on the assistant and the API count together: the 5th locks.
    on_assistant = {"user_id": 1, "message": "send 100 to ravi", "password": "guess"}
    for _ in range(3):
        reply = client.post("/assistant", json=on_assistant, headers=bearer(client, 1)).json()
        assert reply["reply"] == "Incorrect password. Transaction cancelled."
    fifth = send(client, {**TO_RAVI, "mfa_token": "guess"})
    assert fifth.status_code == 423
    assert fifth.json()["error_code"] == "TRANSFERS_LOCKED"
    assert fifth.json()["message"] == (
        "Too many wrong passwords. Transfers are locked for 15 minutes. Nothing was sent."
    )
    # The 6th is refused even with the right password, by API and by the assistant.
    assert send(client, TO_RAVI).status_code == 423
    right = {**on_assistant, "password": PASSWORD}
    reply = client.post("/assistant", json=right, headers=bearer(client, 1)).json()
    assert reply["reply"].startswith("Too many wrong passwords.")
    assert balances(client) == START
    assert audit(client) == [
        *[(channel, "refused", "wrong_password") for channel in ["api", *["assistant"] * 3]],
        ("api", "refused", "locked"),
        ("api", "refused", "locked"),
        ("assistant", "refused", "locked"),
    ]
    # Another user is not affected.
    theirs = send(
        client, {"amount": 1, "contact": "john", "mfa_token": PASSWORD}, account=2, user=2
    )
    assert theirs.status_code == 201


def test_the_telephone_pin_may_be_the_second_factor(client: TestClient) -> None:
    """With mfa_method "pin" the token is the keypad PIN (data/demo_users.yaml: 1234), not
    the password, and a wrong one counts toward the same lockout."""
    pin = {**TO_RAVI, "mfa_method": "pin"}
    assert send(client, {**pin, "mfa_token": PASSWORD}).status_code == 403
    wrong = send(client, {**pin, "mfa_token": "9999"})
    assert wrong.status_code == 403
    assert wrong.json()["message"] == "Incorrect PIN. Transaction cancelled."
    assert balances(client) == START
    made = send(client, {**pin, "mfa_token": "1234"})
    assert made.status_code == 201, made.text
    assert balances(client)[1] == START[1] - 25_050
    failed = client.app.state.services.dialogue.assistant.ledger.events.for_user(
        1, "password.failed"
    )
    assert [event.payload["factor"] for event in failed] == ["pin", "pin"]


def test_insufficient_funds(client: TestClient) -> None:
    response = send(client, {**TO_RAVI, "amount": 10_000.01})
    assert response.status_code == 422
    assert response.json() == {
        "status": "error",
        "error_code": "INSUFFICIENT_FUNDS",
        "message": "Insufficient balance. You have ₹10000 but trying to send ₹10000.01.",
        "details": {
            "field": "amount",
            "reason": "insufficient_funds",
            "balance": 10000,
            "amount": 10000.01,
        },
    }
    assert balances(client) == START
    assert audit(client) == [("api", "refused", "insufficient_funds")]
    assert send(client, {**TO_RAVI, "amount": 10_000}).status_code == 201  # all of it


@pytest.mark.parametrize(
    ("receiver", "status", "code", "message"),
    [
        (
            {"contact": "zed"},
            422,
            "RECIPIENT_NOT_FOUND",
            "I can't find 'Zed' in the system. Available contacts: Ravi, Jane, John, Mom, Mike.",
        ),
        (
            {"destination_account": 999},
            422,
            "RECIPIENT_NOT_FOUND",
            "There is no account 999. Nothing was sent.",
        ),
        (
            {"destination_account": 1},
            400,
            "SAME_ACCOUNT",
            "That is your own account: send money to someone else's.",
        ),
    ],
)
def test_an_unknown_receiver_is_refused(
    client: TestClient, receiver: dict, status: int, code: str, message: str
) -> None:
    response = send(client, {"amount": 10, "mfa_token": PASSWORD, **receiver})
    assert response.status_code == status
    assert (response.json()["error_code"], response.json()["message"]) == (code, message)
    assert response.json()["details"]["field"] == next(iter(receiver))
    assert balances(client) == START


def test_an_unknown_account_is_only_said_after_the_second_factor(client: TestClient) -> None:
    """A token without the password cannot probe which account numbers exist."""
    for account in (999, 4):
        guess = send(client, {"amount": 10, "destination_account": account, "mfa_token": "guess"})
        assert guess.status_code == 403, guess.text
        assert guess.json()["error_code"] == "INVALID_SECOND_FACTOR"
        assert "999" not in guess.text
    assert audit(client)[-1] == ("api", "refused", "wrong_password")
    assert balances(client) == START


def test_the_contact_list_in_the_refusal_is_the_callers(client: TestClient) -> None:
    mom = {"amount": 1, "contact": "mom", "mfa_token": PASSWORD}
    response = send(client, mom, account=2, user=2)
    assert response.json()["details"]["contacts"] == ["john", "ravi"]


def test_only_the_owner_may_send_from_an_account(client: TestClient) -> None:
    # User 2's token, user 2's right password, user 1's account: refused.
    body = {"amount": 10, "destination_account": 2, "mfa_token": PASSWORD}
    for account in (1, 999):  # another user's, and one that does not exist: the same answer
        response = send(client, body, account=account, user=2)
        assert response.status_code == 403
        assert response.json() == {
            "status": "error",
            "error_code": "FORBIDDEN",
            "message": "This account is not yours.",
        }
    assert send(client, body, user=None).status_code == 401
    garbage = client.post(PATH.format(1), json=body, headers={"Authorization": "Bearer x.y.z"})
    assert garbage.status_code == 401
    assert balances(client) == START
    assert audit(client, 2) == []


def test_a_token_that_is_not_a_valid_access_token_is_401_on_both_routes(
    client: TestClient,
) -> None:
    tokens = client.app.state.services.bank.tokens
    pair = tokens.issue(2)
    logged_out = tokens.issue(2).access_token
    tokens.revoke(logged_out)
    claims = jwt.decode(pair.access_token, options={"verify_signature": False})
    elsewhere = jwt.encode(claims, "another-installation-secret-0123456789", algorithm="HS256")
    routes = [
        ("post", PATH.format(2), {"amount": 10, "contact": "john", "mfa_token": PASSWORD}),
        ("get", "/api/notifications/", None),
        ("patch", "/api/notifications/read-all", None),
    ]
    for token in (pair.refresh_token, logged_out, elsewhere):
        for method, path, body in routes:
            headers = {"Authorization": f"Bearer {token}"}
            response = client.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (path, response.text)
            assert response.headers["WWW-Authenticate"] == "Bearer"
    assert balances(client) == START


def test_a_token_is_needed_in_demo_mode_too(sqlite_url: str) -> None:
    with TestClient(create_app(settings_for(sqlite_url, BANKBOT_DEMO_MODE="1"))) as client:
        response = send(client, TO_RAVI, user=None)
        assert response.status_code == 401
        assert response.json()["error_code"] == "UNAUTHORIZED"
        assert balances(client) == START


@pytest.mark.parametrize(
    "body",
    [
        {"amount": 10, "mfa_token": PASSWORD},  # no receiver
        {"amount": 10, "contact": "ravi", "destination_account": 3, "mfa_token": PASSWORD},
        {"amount": 10, "contact": "ravi"},  # no second factor
        {"amount": 10, "contact": "ravi", "mfa_token": ""},
        {"amount": 10, "contact": "ravi", "mfa_token": PASSWORD, "mfa_method": "sms"},
        {**TO_RAVI, "transaction_type": "payment"},
        {**TO_RAVI, "description": "not stored, so not accepted"},
        {**TO_RAVI, "destination_account": "ACC-2024-002", "contact": None},
        {"contact": "ravi", "mfa_token": PASSWORD},  # no amount
        [TO_RAVI],
    ],
)
def test_a_malformed_request_is_refused(client: TestClient, body: object) -> None:
    response = client.post(PATH.format(1), json=body, headers=bearer(client, 1))
    assert response.status_code == 422, response.text
    assert PASSWORD not in response.text  # the body is never echoed
    assert balances(client) == START


def test_bad_json_and_a_scheduled_date(client: TestClient) -> None:
    headers = {**bearer(client, 1), "Content-Type": "application/json"}
    for raw in (b'{"amount": 10, "contact": ', b"", b"\xff\xfe", b"null"):
        response = client.post(PATH.format(1), content=raw, headers=headers)
        assert response.status_code == 422, raw
    scheduled = send(client, {**TO_RAVI, "scheduled_date": "2026-12-24"})
    assert scheduled.status_code == 400
    assert scheduled.json()["error_code"] == "SCHEDULING_NOT_SUPPORTED"
    assert balances(client) == START
    assert audit(client) == []


@pytest.mark.parametrize(
    ("amount", "reason"),
    [
        (0, "not_positive"),
        (-250, "not_positive"),
        ("-1e999999999", "not_positive"),
        (0.001, "fraction_of_paisa"),
        ("10.005", "fraction_of_paisa"),
        ("1e-999999999", "fraction_of_paisa"),
        ("1.00000000000000000000000000001", "fraction_of_paisa"),
        (100_000.01, "too_large"),
        (10**30, "too_large"),
        ("1e999999999", "too_large"),
    ],
)
def test_an_absurd_amount_is_refused_with_its_reason(
    client: TestClient, amount: object, reason: str
) -> None:
    response = send(client, {**TO_RAVI, "amount": amount})
    assert response.status_code == 422
    body = response.json()
    assert body["error_code"] == "INVALID_AMOUNT"
    assert body["details"] == {"field": "amount", "reason": reason}
    expected = {
        "not_positive": "The amount must be more than zero.",
        "fraction_of_paisa": "Amounts can have at most two decimal places, like ₹10.50.",
        "too_large": "The most I can send in one transfer is ₹100000.",
    }
    assert body["message"] == expected[reason]
    assert balances(client) == START


@pytest.mark.parametrize("amount", ["NaN", "Infinity", True, "ten", None, {"rupees": 10}])
def test_an_amount_that_is_not_a_number_is_refused(client: TestClient, amount: object) -> None:
    response = send(client, {**TO_RAVI, "amount": amount})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "amount"]
    assert balances(client) == START


def test_an_infinite_json_number_is_refused(client: TestClient) -> None:
    raw = b'{"amount": 1e400, "contact": "ravi", "mfa_token": "password123"}'
    headers = {**bearer(client, 1), "Content-Type": "application/json"}
    response = client.post(PATH.format(1), content=raw, headers=headers)
    assert response.status_code == 422
    assert balances(client) == START


def test_the_hourly_transfer_limit_is_shared_with_the_assistant(sqlite_url: str) -> None:
    settings = settings_for(sqlite_url, BANKBOT_LIMITS__TRANSFERS="2")
    with TestClient(create_app(settings)) as client:
        assert send(client, TO_RAVI).status_code == 201
        on_assistant = {"user_id": 1, "message": "send 5 to jane", "password": PASSWORD}
        reply = client.post("/assistant", json=on_assistant, headers=bearer(client, 1)).json()
        assert reply["data"]["success"] is True
        third = send(client, TO_RAVI)
        assert third.status_code == 429
        assert third.json()["error_code"] == "TRANSFER_LIMIT_EXCEEDED"
        assert third.json()["message"].startswith(
            "You have reached the limit of 2 transfers per hour. Nothing was sent."
        )
        assert 0 < int(third.headers["Retry-After"]) <= 3600
        assert third.json()["retry_after"] == int(third.headers["Retry-After"])
        assert balances(client)[1] == 1_000_000 - 25_050 - 500


def test_transfers_sent_at_once_each_count_the_ones_before_them_as_a_burst(
    postgres_url: str,
) -> None:
    """The fraud score reads the sender's ledger under the ledger's lock: eight transfers
    sent together are scored one after another, so the 4th to 8th each get the burst's
    points, as if they had been sent one by one."""
    burst_only = {  # the burst alone makes an alert; no other factor applies
        "BANKBOT_FRAUD__MEDIUM_AT": "20",
        "BANKBOT_FRAUD__BURST_POINTS": "20",
        "BANKBOT_FRAUD__BURST_TRANSFERS": "3",
        "BANKBOT_FRAUD__NEW_RECEIVER_POINTS": "0",
        "BANKBOT_FRAUD__NIGHT_START_HOUR": "0",
        "BANKBOT_FRAUD__NIGHT_END_HOUR": "0",
        # Eight passwords checked at once would pass the lockout's five turns.
        "BANKBOT_LOCKOUT__ATTEMPTS": "8",
    }
    with TestClient(create_app(settings_for(postgres_url, **burst_only))) as client:
        body = {"amount": 10, "contact": "ravi", "mfa_token": PASSWORD}
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(lambda index: send(client, body, key=f"burst-{index}"), range(8))
            )
        assert [answer.status_code for answer in answers] == [201] * 8
    engine = make_engine(postgres_url)
    with Session(engine) as session:
        alerts = session.exec(select(FraudAlert).where(FraudAlert.user_id == 1)).all()
    engine.dispose()
    assert sorted(reason for alert in alerts for reason in alert.reasons) == sorted(
        f"your {nth} transfer in 10 minutes" for nth in ("4th", "5th", "6th", "7th", "8th")
    )


def test_without_the_password_counters_nothing_moves(sqlite_url: str) -> None:
    # A Redis nobody listens on: the lockout counters cannot be kept.
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    with TestClient(create_app(settings_for(sqlite_url, REDIS_URL=unreachable))) as client:
        response = send(client, TO_RAVI, key="while-down")
        assert response.status_code == 503
        assert response.json()["error_code"] == "SERVICE_UNAVAILABLE"
        assert balances(client) == START
    # The key was not kept: the retry, once the store answers, is made.
    with TestClient(create_app(settings_for(sqlite_url))) as client:
        assert send(client, TO_RAVI, key="while-down").status_code == 201


@contextlib.contextmanager
def two_servers(env: dict[str, str]) -> Iterator[list[str]]:
    """Two server processes on one database; each given two minutes to start (the machine
    may be busy)."""
    ports = [free_port(), free_port()]
    with contextlib.ExitStack() as stack:
        for port in ports:
            process = stack.enter_context(running_server(["--port", str(port)], env))
            wait_for(f"http://127.0.0.1:{port}/health", process, seconds=120)
        yield [f"http://127.0.0.1:{port}" for port in ports]


def test_concurrent_api_transfers_on_two_servers_conserve_money(
    postgres_url: str, redis_prefix: str
) -> None:
    """Real servers on PostgreSQL and Redis; users send to each other at once, some more
    than they have, and each keyed request is sent to both servers at the same moment."""
    env = {
        "BANKBOT_NLU__BACKENDS": "[rules]",
        "BANKBOT_VOICE__ENABLED": "false",
        "BANKBOT_LIMITS__REQUESTS": "1000000",
        "BANKBOT_LIMITS__TRANSFERS": "1000000",
        **QUIET,
        "DATABASE_URL": postgres_url,
        "REDIS_URL": REDIS_URL,
        "BANKBOT_SESSIONS__KEY_PREFIX": redis_prefix,
    }
    emails = {1: "john", 2: "jane", 3: "ravi", 4: "mary", 5: "mike"}
    with two_servers(env) as bases:
        prepare_users(postgres_url, balance=30_000)  # ₹300 each, cheap password hashes
        opening = total_balance(postgres_url)
        tokens = {user: bearer_of(bases[0], f"{name}@example.com") for user, name in emails.items()}
        # 60 requests: user u sends ₹(150..268) to account u+1, so some run out of money.
        plans = [
            (index, user, (user % 5) + 1, 150 + 2 * index)
            for index, user in zip(range(60), itertools.cycle(emails), strict=False)
        ]
        with httpx.Client(timeout=120, limits=httpx.Limits(max_connections=64)) as http:

            def post(plan: tuple[int, int, int, int], base: str) -> httpx.Response:
                index, user, to, rupees = plan
                body = {"amount": rupees, "destination_account": to, "mfa_token": PASSWORD}
                headers = {**tokens[user], "Idempotency-Key": f"plan-{index}"}
                return http.post(f"{base}{PATH.format(user)}", json=body, headers=headers)

            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                futures = [pool.submit(post, plan, base) for plan in plans for base in bases]
                answers = [future.result() for future in futures]
    assert {answer.status_code for answer in answers} <= {201, 409, 422}
    made = {
        answer.json()["transaction_id"]: answer.json()["amount"]
        for answer in answers
        if answer.status_code == 201
    }
    refused = [answer.json()["error_code"] for answer in answers if answer.status_code == 422]
    assert made and refused and set(refused) == {"INSUFFICIENT_FUNDS"}
    # Of the two copies of a keyed request, one ran; the other waited its turn (409) or
    # got the first one's answer.
    for first, second in zip(answers[::2], answers[1::2], strict=True):
        assert (first.status_code, second.status_code) != (409, 409)
    ledger = check_ledger(postgres_url, opening)
    assert total_balance(postgres_url) == opening
    ledger.pop("moved_accounts")
    # Every transfer answered 201 is in the ledger once, and nothing else is.
    assert {transfer: amount * 100 for transfer, amount in made.items()} == ledger
    assert set(made) <= {transfer_id_for(user, f"plan-{i}") for i, user, _, _ in plans}
    # Each transfer notified its sender and its receiver, in its own transaction.
    engine = make_engine(postgres_url)
    with Session(engine) as session:
        notified = session.exec(
            select(Notification.event_type, func.count()).group_by(Notification.event_type)
        ).all()
    engine.dispose()
    counts = dict(notified)
    assert counts["transaction.completed"] == counts["transaction.received"] == len(made)
    assert counts.get("transaction.failed", 0) == len(refused)
