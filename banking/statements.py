"""Read-only views of the ledger: pages of a user's entries, one account, spending by category.

Spending is every debit in the period (money that left the account, transfers to people
included), grouped by the entry's category. Entries of databases made before categories
existed have none; they count as "other".
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Engine, func
from sqlmodel import Session, col, or_, select

from banking.ledger import AccountNotFound
from banking.models import Account, LedgerEntry
from banking.money import rupees_number

CURRENCY = "INR"

Category = Literal[
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
]
CATEGORIES: tuple[str, ...] = get_args(Category)
OTHER = "other"
EntryType = Literal["debit", "credit"]

Period = Literal[
    "today", "yesterday", "this_week", "last_week", "this_month", "last_month", "this_year"
]
PERIODS: tuple[str, ...] = get_args(Period)


def period_range(period: Period, now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of the period that contains `now` (or the one before it), as local
    calendar days, weeks (from Monday), months and years in `zone`."""
    today = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    month = today.replace(day=1)
    if period == "today":
        return today, _days_later(today, 1)
    if period == "yesterday":
        return _days_later(today, -1), today
    if period in ("this_week", "last_week"):
        monday = _days_later(today, -today.weekday())
        if period == "this_week":
            return monday, _days_later(monday, 7)
        return _days_later(monday, -7), monday
    if period == "this_month":
        return month, _next_month(month)
    if period == "last_month":
        return _previous_month(month), month
    year = month.replace(month=1)
    return year, year.replace(year=year.year + 1)


def _days_later(day: datetime, days: int) -> datetime:
    """Midnight `days` calendar days later, in the day's zone (a day is not always 24 h)."""
    return (day.replace(tzinfo=None) + timedelta(days=days)).replace(tzinfo=day.tzinfo)


def _next_month(first: datetime) -> datetime:
    return first.replace(year=first.year + first.month // 12, month=first.month % 12 + 1)


def _previous_month(first: datetime) -> datetime:
    if first.month == 1:
        return first.replace(year=first.year - 1, month=12)
    return first.replace(month=first.month - 1)


@dataclass(frozen=True)
class EntryPage:
    entries: list[LedgerEntry]
    total: int  # entries matching the filters, on every page


def signed_rupees(entry: LedgerEntry) -> int | float:
    """The entry's amount in rupees, negative for a debit."""
    return rupees_number(-entry.amount if entry.type == "debit" else entry.amount)


def category_name(category: str) -> str:
    """How a category is shown: "Groceries" (seeds/000's style); filters take either form."""
    return category.title()


@dataclass(frozen=True)
class Spending:
    start: datetime
    end: datetime
    # paise per category, largest first; only categories with spending
    by_category: list[tuple[str, int]]

    @property
    def total(self) -> int:
        return sum(paise for _category, paise in self.by_category)

    def as_json(self, period: str, category: str | None) -> dict[str, Any]:
        """The JSON body: seeds/000's spending_by_category items ({name, value} in rupees)."""
        return {
            "period": period,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "currency": CURRENCY,
            "category": None if category is None else category_name(category),
            "total": rupees_number(self.total),
            "spending_by_category": [
                {"name": category_name(name), "value": rupees_number(paise)}
                for name, paise in self.by_category
            ],
        }


class Statements:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def page(
        self,
        user_id: int,
        *,
        page: int,
        limit: int,
        category: str | None = None,
        entry_type: EntryType | None = None,
    ) -> EntryPage:
        """Page `page` (from 1) of the user's entries, newest first, `limit` to a page."""
        with Session(self.engine) as session:
            account = _account_of_user(session, user_id)
            where = [col(LedgerEntry.account_id) == account.id]
            if category is not None:
                where.append(_in_category(category))
            if entry_type is not None:
                where.append(col(LedgerEntry.type) == entry_type)
            total = session.exec(select(func.count()).select_from(LedgerEntry).where(*where)).one()
            query = (
                select(LedgerEntry)
                .where(*where)
                .order_by(col(LedgerEntry.created_at).desc(), col(LedgerEntry.id).desc())
                .offset((page - 1) * limit)
                .limit(limit)
            )
            return EntryPage(list(session.exec(query).all()), total)

    def account(self, account_id: int) -> Account | None:
        with Session(self.engine) as session:
            return session.get(Account, account_id)

    def recent(self, account_id: int, count: int) -> list[LedgerEntry]:
        """The account's `count` most recent entries, newest first."""
        with Session(self.engine) as session:
            query = (
                select(LedgerEntry)
                .where(LedgerEntry.account_id == account_id)
                .order_by(col(LedgerEntry.created_at).desc(), col(LedgerEntry.id).desc())
                .limit(count)
            )
            return list(session.exec(query).all())

    def first_and_last(self, account_id: int) -> tuple[datetime | None, datetime | None]:
        """When the account's first and latest entries were made (None without entries)."""
        with Session(self.engine) as session:
            query = select(
                func.min(LedgerEntry.created_at), func.max(LedgerEntry.created_at)
            ).where(LedgerEntry.account_id == account_id)
            first, last = session.exec(query).one()
        return first, last

    def spending(
        self, user_id: int, start: datetime, end: datetime, category: str | None = None
    ) -> Spending:
        """The user's debits made in [start, end), per category."""
        with Session(self.engine) as session:
            account = _account_of_user(session, user_id)
            named = func.coalesce(LedgerEntry.category, OTHER)
            query = (
                select(named, func.sum(LedgerEntry.amount))
                .where(
                    LedgerEntry.account_id == account.id,
                    LedgerEntry.type == "debit",
                    col(LedgerEntry.created_at) >= start,
                    col(LedgerEntry.created_at) < end,
                )
                .group_by(named)
            )
            if category is not None:
                query = query.where(_in_category(category))
            rows = [(name, int(paise)) for name, paise in session.exec(query).all()]
        rows.sort(key=lambda row: (-row[1], row[0]))
        return Spending(start, end, rows)


def _in_category(category: str) -> ColumnElement[bool]:
    """The SQL condition for one category; "other" includes entries without one."""
    if category == OTHER:
        return or_(col(LedgerEntry.category).is_(None), col(LedgerEntry.category) == OTHER)
    return col(LedgerEntry.category) == category


def _account_of_user(session: Session, user_id: int) -> Account:
    account = session.exec(select(Account).where(Account.user_id == user_id)).first()
    if account is None:
        raise AccountNotFound(f"no account for user {user_id}")
    return account
