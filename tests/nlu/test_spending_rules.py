"""The rules stage on spending questions: intent, category and period."""

import pytest

from nlu.rules import parse


@pytest.mark.parametrize(
    ("text", "category", "period"),
    [
        ("how much did I spend on groceries this month?", "groceries", "this_month"),
        ("What did I spend on dining last month", "dining", "last_month"),
        ("my spending this month", None, "this_month"),
        ("how much have i spent on uber this week", "transport", "this_week"),
        ("um how much did i spend on food today", "dining", "today"),
        ("how much did i pay for rent last month", "bills", "last_month"),
        ("how much went on movies this year", "entertainment", "this_year"),
        ("total expenses for the previous week", None, "last_week"),
        ("how much money did i spend yesterday at the pharmacy", "health", "yesterday"),
        ("how much did i spend", None, None),
        ("how much did i spend on one hundred things from amazon", "shopping", None),
    ],
)
def test_spending_questions(text: str, category: str | None, period: str | None) -> None:
    result = parse(text)
    assert (result.intent, result.category, result.period) == ("check_spending", category, period)
    assert result.confidence >= 0.6 and result.source == "rules"


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("how much can i spend right now", "unknown"),  # a balance question for later stages
        ("what's my spending limit", "unknown"),
        ("what are some ways to reduce spending", "unknown"),
        ("i don't want to know how much i spent", "unknown"),
        ("show my recent spending", "transaction_history"),
        ("send 500 to ravi for groceries", "send_money"),
        ("pay my electricity bill", "unknown"),
    ],
)
def test_not_spending_questions(text: str, intent: str) -> None:
    result = parse(text)
    assert result.intent == intent
    assert result.category is None and result.period is None


def test_only_a_spending_reading_names_category_and_period_in_json() -> None:
    assert "category" not in parse("show my transactions").model_dump(mode="json")
    spending = parse("my spending last month").model_dump(mode="json")
    assert spending["period"] == "last_month" and "category" not in spending
