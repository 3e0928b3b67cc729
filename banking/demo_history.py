"""A demo user's generated history: months of salary, bills and purchases at merchants.

Generated once, when the demo users are created: from the first day of the month
`months` months before the first start up to that moment, so "this month" and "last
month" have entries on the day the demo starts. The same seed and start give the same
history. Amounts are whole rupees; a purchase that would overdraw the account is left out,
so every `balance_after` chains from the opening balance and the last one is the balance.
"""

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from banking.money import format_rupees, rupees_to_paise

DAY_STARTS_AT_HOUR = 8
DAY_MINUTES = 14 * 60  # purchases fall between 08:00 and 22:00 local time
SALARY_HOUR = 9
BILL_HOUR = 10


@dataclass(frozen=True)
class GeneratedEntry:
    type: str
    amount: int  # paise
    counterparty: str
    description: str
    category: str
    created_at: datetime
    balance_after: int  # paise


def generate_history(spec: dict[str, Any], now: datetime, zone: ZoneInfo) -> list[GeneratedEntry]:
    """The entries `spec` (a user's `generated_history` in data/demo_users.yaml) describes,
    oldest first, up to `now`."""
    rng = random.Random(spec["seed"])
    local_now = now.astimezone(zone)
    start = _months_before(local_now.replace(day=1), spec["months"]).date()
    planned: list[tuple[datetime, str, str, int, str]] = []  # when, type, who, rupees, category
    day = start
    while day <= local_now.date():
        planned += _day_plan(rng, spec, day, zone)
        day += timedelta(days=1)
    planned = sorted((item for item in planned if item[0] <= local_now), key=lambda item: item[0])

    balance = rupees_to_paise(spec["opening_balance"])
    entries = []
    for when, entry_type, counterparty, rupees, category in planned:
        amount = rupees_to_paise(rupees)
        if entry_type == "debit" and amount > balance:
            continue
        balance += amount if entry_type == "credit" else -amount
        shown = format_rupees(amount)
        description = (
            f"Received {shown} from {counterparty}"
            if entry_type == "credit"
            else f"Paid {shown} to {counterparty}"
        )
        entries.append(
            GeneratedEntry(entry_type, amount, counterparty, description, category, when, balance)
        )
    return entries


def _day_plan(
    rng: random.Random, spec: dict[str, Any], day: date, zone: ZoneInfo
) -> list[tuple[datetime, str, str, int, str]]:
    """What happens on one day: the salary and bills due that day, then random purchases."""
    plan = []
    salary = spec["salary"]
    if day.day == salary["day"]:
        at = datetime(day.year, day.month, day.day, SALARY_HOUR, tzinfo=zone)
        plan.append((at, "credit", salary["counterparty"], salary["amount"], "salary"))
    for bill in spec["bills"]:
        if day.day == bill["day"]:
            at = datetime(day.year, day.month, day.day, BILL_HOUR, tzinfo=zone)
            plan.append(
                (at, "debit", bill["counterparty"], _rupees(rng, bill["amount"]), bill["category"])
            )
    for category, shop in spec["purchases"].items():
        if rng.random() < shop["per_week"] / 7:
            minute = rng.randrange(DAY_MINUTES)
            at = datetime(day.year, day.month, day.day, DAY_STARTS_AT_HOUR, tzinfo=zone)
            at += timedelta(minutes=minute)
            merchant = rng.choice(shop["merchants"])
            plan.append((at, "debit", merchant, _rupees(rng, shop["amount"]), category))
    return plan


def _rupees(rng: random.Random, amount: int | list[int]) -> int:
    """A fixed amount, or one drawn from [low, high]."""
    if isinstance(amount, int):
        return amount
    low, high = amount
    return rng.randint(low, high)


def _months_before(first: datetime, months: int) -> datetime:
    index = first.year * 12 + first.month - 1 - months
    return first.replace(year=index // 12, month=index % 12 + 1)
