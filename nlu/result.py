"""NLUResult: what a sentence asks for. Its JSON form is the documented /test-nlu result.

A spending question (check_spending) also has a `category` and a `period`; they appear in
the JSON only when read, so the documented results keep their documented fields.
"""

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field, PlainSerializer


def _json_number(value: Decimal) -> int | float:
    """Whole amounts as integers (500), others as their decimal value (10.5)."""
    return int(value) if value == value.to_integral_value() else float(value)


JsonDecimal = Annotated[Decimal, PlainSerializer(_json_number, return_type=int | float)]

BANKING_INTENTS = ("check_balance", "send_money", "transaction_history", "check_spending")
DIALOGUE_ACTS = ("affirm", "deny", "cancel", "greet", "goodbye", "help", "repeat")
# A complaint or dispute about a transaction ("a payment I don't recognise", "charged
# twice"): answered with the fraud report and a human, never with a statement read-out.
REPORT_PROBLEM = "report_problem"
KNOWN_INTENTS = (*BANKING_INTENTS, *DIALOGUE_ACTS, REPORT_PROBLEM)

# The names banking.statements uses (nlu imports no banking; tests/banking/test_statements.py
# checks that both lists agree).
CATEGORIES = (
    "groceries",
    "dining",
    "transport",
    "shopping",
    "bills",
    "entertainment",
    "health",
    "salary",
    "transfer",
    "other",
)
PERIODS = ("today", "yesterday", "this_week", "last_week", "this_month", "last_month", "this_year")

Intent = Literal[
    "check_balance",
    "send_money",
    "transaction_history",
    "check_spending",
    "affirm",
    "deny",
    "cancel",
    "greet",
    "goodbye",
    "help",
    "repeat",
    "report_problem",
    "unknown",
]


class NLUResult(BaseModel):
    intent: Intent
    amount: JsonDecimal | None = None
    receiver: str | None = None
    transaction_count: int | None = None
    # A spending question's slots, left out of the JSON when not read.
    category: str | None = Field(default=None, exclude_if=lambda value: value is None)
    period: str | None = Field(default=None, exclude_if=lambda value: value is None)
    confidence: float
    source: str
