"""The money views against the real app: GET /api/transactions/, /api/transactions/spending
and /api/v1/accounts/{id}, with the demo users' real history (Priya, user 6, has months of
generated history; John, user 1, the contract's four entries)."""

import math
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from banking.models import Account
from server import create_app
from tests.conftest import bearer, settings_for

JOHN, JANE, PRIYA = 1, 2, 6
SPENT = "You spent"


@pytest.fixture(scope="module")
def app_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app for the read-only tests (seeding hashes a password: ~0.3 s)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('money') / 'bank.db'}"
    with TestClient(create_app(settings_for(url))) as client:
        yield client


def get(client: TestClient, path: str, user: int | None = PRIYA, **params: object):
    headers = bearer(client, user) if user is not None else {}
    return client.get(path, params=params, headers=headers)


def every_transaction(client: TestClient, user: int = PRIYA, **filters: object) -> list[dict]:
    """All of the user's transactions, page by page (100 to a page)."""
    found: list[dict] = []
    page = 1
    while True:
        body = get(client, "/api/transactions/", user, page=page, limit=100, **filters).json()
        found += body["transactions"]
        if page >= body["pages"]:
            return found
        page += 1


def account_id(client: TestClient, user: int) -> int:
    with Session(client.app.state.services.bank.statements.engine) as session:
        return session.exec(select(Account).where(Account.user_id == user)).one().id


def test_pages_cover_every_transaction_once_newest_first(app_client: TestClient) -> None:
    first = get(app_client, "/api/transactions/", limit=7).json()
    total = first["total"]
    assert total > 100  # months of history
    assert first["page"] == 1 and first["pages"] == math.ceil(total / 7)
    seen, stamps = [], []
    for page in range(1, first["pages"] + 1):
        body = get(app_client, "/api/transactions/", page=page, limit=7).json()
        assert body["total"] == total
        expected = 7 if page < first["pages"] else total - 7 * (first["pages"] - 1)
        assert len(body["transactions"]) == expected
        seen += [item["id"] for item in body["transactions"]]
        stamps += [datetime.fromisoformat(item["timestamp"]) for item in body["transactions"]]
    assert len(seen) == len(set(seen)) == total
    assert stamps == sorted(stamps, reverse=True)
    past_the_end = get(app_client, "/api/transactions/", page=first["pages"] + 1, limit=7).json()
    assert past_the_end["transactions"] == [] and past_the_end["total"] == total


def test_defaults_and_the_largest_page(app_client: TestClient) -> None:
    default = get(app_client, "/api/transactions/").json()
    assert len(default["transactions"]) == 20 and default["page"] == 1
    largest = get(app_client, "/api/transactions/", limit=100).json()
    assert len(largest["transactions"]) == 100
    assert largest["transactions"][:20] == default["transactions"]


def test_an_item_has_the_documented_shape(app_client: TestClient) -> None:
    item = get(app_client, "/api/transactions/", limit=1, type="debit").json()["transactions"][0]
    assert set(item) >= {"id", "merchant", "category", "amount", "type", "timestamp", "tags"}
    assert item["amount"] < 0 and item["type"] == "debit"
    assert item["tags"] == [item["category"].lower()]
    assert item["description"] == f"Paid ₹{-item['amount']} to {item['merchant']}"
    assert datetime.fromisoformat(item["timestamp"]).utcoffset() is not None


def test_filters_by_category_and_type(app_client: TestClient) -> None:
    everything = every_transaction(app_client)
    by_category = Counter(item["category"] for item in everything)
    for category, count in by_category.items():
        # Shown as "Groceries"; the filter takes either form.
        for spelled in (category, category.lower()):
            body = get(app_client, "/api/transactions/", category=spelled, limit=1).json()
            assert body["total"] == count
        picked = every_transaction(app_client, category=category.lower())
        assert {item["category"] for item in picked} == {category}
    debits = every_transaction(app_client, type="debit")
    credits = every_transaction(app_client, type="credit")
    assert len(debits) + len(credits) == len(everything)
    assert all(item["amount"] < 0 for item in debits)
    assert all(item["amount"] > 0 for item in credits)
    assert {item["category"] for item in credits} == {"Salary"}
    salary_debits = get(app_client, "/api/transactions/", category="salary", type="debit").json()
    assert salary_debits["total"] == 0 and salary_debits["pages"] == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page": 0}, "page"),
        ({"page": -1}, "page"),
        ({"page": "two"}, "page"),
        ({"page": 10**30}, "page"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": 2.5}, "limit"),
        ({"category": "cars"}, "category"),
        ({"category": ""}, "category"),
        ({"type": "refund"}, "type"),
        ({"user_id": "me"}, "user_id"),
        ({"user_id": 2**63}, "user_id"),
    ],
)
def test_bad_parameters_are_422_naming_them(
    app_client: TestClient, params: dict, field: str
) -> None:
    response = get(app_client, "/api/transactions/", **params)
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["query", field]]


def test_the_contract_history_is_categorised(app_client: TestClient) -> None:
    body = get(app_client, "/api/transactions/", JOHN).json()
    assert body["total"] == 4 and body["pages"] == 1
    assert [
        (item["merchant"], item["category"], item["amount"]) for item in body["transactions"]
    ] == [
        ("Salary", "Salary", 5000),
        ("Groceries", "Groceries", -2000),
        ("Ravi", "Transfer", -1000),
        ("Mom", "Transfer", 1500),
    ]
    assert body["transactions"][0]["timestamp"] == "2025-11-20T09:30:00+05:30"


def test_nobody_without_a_token_and_only_ones_own(app_client: TestClient) -> None:
    for path in ("/api/transactions/", "/api/transactions/spending"):
        refused = get(app_client, path, user=None)
        assert refused.status_code == 401
        assert refused.json()["error_code"] == "UNAUTHORIZED"
        others = get(app_client, path, user=JANE, user_id=PRIYA)
        assert others.status_code == 403
        assert others.json()["error_code"] == "FORBIDDEN"
        assert "Priya" not in others.text and "BigBasket" not in others.text
        assert get(app_client, path, user=PRIYA, user_id=PRIYA).status_code == 200
    # Jane's own token shows Jane's (empty) history, never Priya's.
    assert get(app_client, "/api/transactions/", JANE).json()["total"] == 0


def test_a_transfer_shows_on_both_sides_as_a_transfer(database_url: str) -> None:
    with TestClient(create_app(settings_for(database_url))) as client:
        sent = client.post(
            "/assistant",
            json={"user_id": PRIYA, "message": "send 250 to jane", "password": "password123"},
            headers=bearer(client, PRIYA),
        )
        assert sent.json()["data"]["success"] is True
        mine = get(client, "/api/transactions/", PRIYA, limit=1).json()["transactions"][0]
        theirs = get(client, "/api/transactions/", JANE).json()
        assert (mine["merchant"], mine["category"], mine["amount"]) == ("Jane", "Transfer", -250)
        assert theirs["total"] == 1
        received = theirs["transactions"][0]
        assert (received["merchant"], received["category"], received["amount"]) == (
            "Priya",
            "Transfer",
            250,
        )
        spent = get(client, "/api/transactions/spending", PRIYA, category="transfer").json()
        assert spent["total"] == 250


def test_spending_matches_the_listed_debits(app_client: TestClient) -> None:
    debits = every_transaction(app_client, type="debit")
    for period in ("today", "yesterday", "this_week", "last_week", "this_month", "last_month"):
        body = get(app_client, "/api/transactions/spending", period=period).json()
        start, end = datetime.fromisoformat(body["from"]), datetime.fromisoformat(body["to"])
        expected = Counter[str]()
        for item in debits:
            if start <= datetime.fromisoformat(item["timestamp"]) < end:
                expected[item["category"]] += Decimal(str(-item["amount"]))
        assert {row["name"]: row["value"] for row in body["spending_by_category"]} == expected
        assert body["total"] == sum(expected.values())
        assert (body["period"], body["currency"], body["category"]) == (period, "INR", None)
    last_month = get(app_client, "/api/transactions/spending", period="last_month").json()
    assert last_month["total"] > 10_000  # a full month of bills and purchases
    groceries = get(
        app_client, "/api/transactions/spending", period="last_month", category="Groceries"
    ).json()
    (row,) = [row for row in last_month["spending_by_category"] if row["name"] == "Groceries"]
    assert groceries["total"] == row["value"]
    assert groceries["spending_by_category"] == [row]


def test_spending_defaults_to_this_month_and_refuses_unknown_periods(
    app_client: TestClient,
) -> None:
    default = get(app_client, "/api/transactions/spending").json()
    assert default == get(app_client, "/api/transactions/spending", period="this_month").json()
    for params in ({"period": "forever"}, {"period": ""}, {"category": "cars"}):
        response = get(app_client, "/api/transactions/spending", **params)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["query", next(iter(params))]


def test_the_assistant_says_the_same_figure(app_client: TestClient) -> None:
    figure = get(
        app_client, "/api/transactions/spending", period="last_month", category="dining"
    ).json()["total"]
    reply = app_client.post(
        "/assistant",
        json={"user_id": PRIYA, "message": "what did I spend on dining last month?"},
        headers=bearer(app_client, PRIYA),
    ).json()
    assert reply["reply"] == f"You spent ₹{figure} on dining out last month."
    assert reply["page"] == "statements"
    assert reply["data"]["total"] == figure and reply["data"]["category"] == "Dining"


def test_an_account_with_its_recent_transactions(app_client: TestClient) -> None:
    mine = account_id(app_client, PRIYA)
    body = get(app_client, f"/api/v1/accounts/{mine}", include_transactions=True).json()
    balance = app_client.post(
        "/assistant",
        json={"user_id": PRIYA, "message": "what's my balance"},
        headers=bearer(app_client, PRIYA),
    ).json()["data"]["balance"]
    assert (body["account_id"], body["holder_name"], body["currency"]) == (
        mine,
        "Priya Sharma",
        "INR",
    )
    assert body["balance"] == body["available_balance"] == balance
    latest = get(app_client, "/api/transactions/", limit=10).json()["transactions"]
    assert [item["id"] for item in body["transactions"]] == [item["id"] for item in latest]
    assert body["transactions"][0]["balance_after"] == balance
    assert body["last_activity"] == latest[0]["timestamp"]
    assert body["opened_date"] <= latest[-1]["timestamp"][:10]
    assert {item["status"] for item in body["transactions"]} == {"completed"}
    short = get(app_client, f"/api/v1/accounts/{mine}", include_transactions=True, limit=3)
    assert len(short.json()["transactions"]) == 3
    assert "transactions" not in get(app_client, f"/api/v1/accounts/{mine}").json()


def test_an_empty_account_has_no_activity(app_client: TestClient) -> None:
    body = get(
        app_client,
        f"/api/v1/accounts/{account_id(app_client, JANE)}",
        JANE,
        include_transactions=True,
    ).json()
    assert body["balance"] == 5000 and body["transactions"] == []
    assert body["opened_date"] is None and body["last_activity"] is None


@pytest.mark.parametrize(
    ("path", "status", "field"),
    [
        ("/api/v1/accounts/abc", 422, "account_id"),
        ("/api/v1/accounts/0", 422, "account_id"),
        ("/api/v1/accounts/-3", 422, "account_id"),
        ("/api/v1/accounts/1.5", 422, "account_id"),
        (f"/api/v1/accounts/{2**63}", 422, "account_id"),
        (f"/api/v1/accounts/{10**40}", 422, "account_id"),
        ("/api/v1/accounts/6?include_transactions=maybe", 422, "include_transactions"),
        ("/api/v1/accounts/6?limit=101", 422, "limit"),
    ],
)
def test_bad_account_requests_are_422(
    app_client: TestClient, path: str, status: int, field: str
) -> None:
    response = app_client.get(path, headers=bearer(app_client, PRIYA))
    assert response.status_code == status
    assert response.json()["detail"][0]["loc"][-1] == field


def test_someone_elses_or_an_unknown_account_is_403(app_client: TestClient) -> None:
    """The same answer for both, so that a token cannot probe which accounts exist."""
    johns = account_id(app_client, JOHN)
    refused = get(app_client, f"/api/v1/accounts/{johns}", PRIYA, include_transactions=True)
    missing = get(app_client, f"/api/v1/accounts/{2**63 - 1}", PRIYA)
    for response in (refused, missing):
        assert response.status_code == 403
        assert response.json() == refused.json()
        assert response.json()["error_code"] == "FORBIDDEN"
    assert "John" not in refused.text and "10000" not in refused.text
    assert get(app_client, f"/api/v1/accounts/{johns}", user=None).status_code == 401


def test_demo_mode_serves_the_token_free_demo(demo_client: TestClient) -> None:
    listed = demo_client.get("/api/transactions/", params={"user_id": JOHN})
    assert listed.status_code == 200 and listed.json()["total"] == 4
    assert demo_client.get("/api/transactions/").status_code == 422  # nobody named
    account = demo_client.get(f"/api/v1/accounts/{account_id(demo_client, JOHN)}")
    assert account.status_code == 200 and account.json()["balance"] == 10000
    unknown = demo_client.get("/api/v1/accounts/4242")
    assert unknown.status_code == 404 and unknown.json()["error_code"] == "NOT_FOUND"
    # A token is checked all the same.
    other = demo_client.get(
        "/api/transactions/", params={"user_id": JOHN}, headers=bearer(demo_client, JANE)
    )
    assert other.status_code == 403
