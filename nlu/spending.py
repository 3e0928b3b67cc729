"""Spending questions: "how much did I spend on groceries this month?", and their slots.

Works on text already normalised by nlu.rules.normalise (lower case, single spaces). The
category and period names are nlu.result.CATEGORIES and PERIODS; a merchant's name
("uber", "swiggy") stands for its category.
"""

import re

SPENDING = re.compile(
    r"\bhow much (?:money |cash )?(?:did|have|had|do) i (?:spend|spent|spending|blow|blown)\b"
    r"|\bhow much (?:did|have) i (?:pay|paid) (?:for|on|in|towards)\b"
    r"|\bhow much (?:did|have) (?:my|the) (?:\w+ ){1,4}(?:come to|cost me|add up to)\b"
    r"|\bhow much (?:money )?(?:went|has gone|have i spent|did i spend) on\b"
    r"|\bwhat (?:did|have) i (?:spend|spent) (?:on|in|this|last|today|yesterday|so far)\b"
    r"|\b(?:my|total|monthly|weekly) (?:spending|spend|spends|expenses|expenditure)\b"
    r"|\b(?:expense|expenses|spending) (?:total|summary|breakdown|report)\b"
    r"|\b(?:spending|spend|spent|expenses|expenditure) (?:on|for|this|last|today|yesterday"
    r"|so far|by category|per category)\b"
    r"|\b(?:kharcha|kharch|kharche|spendings)\b|\buda (?:diye|diya|di)\b|\budaye\b"
)
NOT_SPENDING = re.compile(
    r"\b(?:limit|can i spend|could i spend|should i spend|budget|reduce|cut|ways to|save|tips"
    r"|afford)\b"
)

CATEGORY_WORDS = {
    "groceries": r"groceries|grocery|supermarket|vegetables|bigbasket|big basket|dmart",
    "dining": r"dining|dine|dining out|eating out|eat out|restaurants?|takeaway|take ?out"
    r"|food delivery|swiggy|zomato|coffee|lunch(?:es)?|dinners?|food",
    "transport": r"transport|transportation|travel|commute|commuting|taxis?|cabs?|uber|ola"
    r"|fuel|petrol|diesel|metro|auto",
    "shopping": r"shopping|clothes|clothing|shoes|amazon|flipkart|myntra",
    "bills": r"bills?|utilities|utility|electricity|rent|phone bill|internet|recharge",
    "entertainment": r"entertainment|movies?|cinema|films?|netflix|subscriptions?|concerts?",
    "health": r"health|healthcare|medicines?|medical|pharmacy|doctors?|gym|fitness",
    "transfer": r"transfers?|sending money|money i sent|people",
}
CATEGORY = [
    (category, re.compile(rf"\b(?:{words})\b")) for category, words in CATEGORY_WORDS.items()
]

PERIOD_WORDS = {
    "today": r"today|so far today",
    "yesterday": r"yesterday",
    "this_week": r"this week|current week|week so far",
    "last_week": r"last week|past week|previous week",
    "this_month": r"this month|current month|month so far",
    "last_month": r"last month|past month|previous month",
    "this_year": r"this year|current year|year so far",
}
PERIOD = [(period, re.compile(rf"\b(?:{words})\b")) for period, words in PERIOD_WORDS.items()]


def asks_spending(words: str) -> bool:
    return bool(SPENDING.search(words)) and not NOT_SPENDING.search(words)


def category_of(words: str) -> str | None:
    """The category named first in the words, if any."""
    found = [
        (match.start(), name) for name, pattern in CATEGORY if (match := pattern.search(words))
    ]
    return min(found)[1] if found else None


def period_of(words: str) -> str | None:
    found = [(match.start(), name) for name, pattern in PERIOD if (match := pattern.search(words))]
    return min(found)[1] if found else None
