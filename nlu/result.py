"""NLUResult: what a sentence asks for. Its JSON form is the documented /test-nlu result."""

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, PlainSerializer


def _json_number(value: Decimal) -> int | float:
    """Whole amounts as integers (500), others as their decimal value (10.5)."""
    return int(value) if value == value.to_integral_value() else float(value)


JsonDecimal = Annotated[Decimal, PlainSerializer(_json_number, return_type=int | float)]

BANKING_INTENTS = ("check_balance", "send_money", "transaction_history")
DIALOGUE_ACTS = ("affirm", "deny", "cancel", "greet", "goodbye", "help", "repeat")

Intent = Literal[
    "check_balance",
    "send_money",
    "transaction_history",
    "affirm",
    "deny",
    "cancel",
    "greet",
    "goodbye",
    "help",
    "repeat",
    "unknown",
]


class NLUResult(BaseModel):
    intent: Intent
    amount: JsonDecimal | None = None
    receiver: str | None = None
    transaction_count: int | None = None
    confidence: float
    source: str
