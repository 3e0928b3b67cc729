"""AssistantReply: the documented /assistant response, and every text the assistant says."""

from typing import Any, Literal

from pydantic import BaseModel, Field

from banking import ContactEntry, Factor, format_rupees
from banking.refusals import (
    BANK_UNREACHABLE,
    STORE_UNAVAILABLE,
    USER_NOT_FOUND,
    contact_list,
    insufficient_balance,
)

Page = Literal["home", "transfer", "statements"]

SYSTEM = "system"


class AssistantReply(BaseModel):
    reply: str
    confidence: float
    source: str
    page: Page | None = None
    data: dict[str, Any] | None = None
    # False only for the documented user-not-found reply; HTTP channels answer it with 404.
    user_found: bool = Field(default=True, exclude=True)
    # True when the user's message was their password: channels must not store, log or
    # show that message (a transcript shows it masked).
    message_was_secret: bool = Field(default=False, exclude=True)

    def body(self) -> dict[str, Any]:
        """The JSON body as documented: `data` is left out when there is none."""
        return self.model_dump(exclude={"data"} if self.data is None else set())


def user_not_found() -> AssistantReply:
    return AssistantReply(
        reply=USER_NOT_FOUND,
        confidence=0,
        source=SYSTEM,
        user_found=False,
    )


def not_understood(confidence: float, source: str) -> AssistantReply:
    return AssistantReply(
        reply="I'm not sure what you want to do. "
        "I can help you: check balance, send money, or show transactions.",
        confidence=confidence,
        source=source,
        data={"require_password": False},
    )


CAPABILITIES = "I can check your balance, send money to your contacts, or read your transactions."
DIALOGUE_ACT_REPLIES = {
    "greet": f"Hello! {CAPABILITIES}",
    "help": f"{CAPABILITIES} Try saying: what's my balance?",
    "goodbye": "Goodbye! Have a nice day.",
    "affirm": f"There is nothing waiting for your confirmation. {CAPABILITIES}",
    "deny": "Okay, nothing was done.",
    "cancel": "Okay, nothing was done.",
    "repeat": f"I can only repeat myself within a conversation. {CAPABILITIES}",
}


def dialogue_act(intent: str, confidence: float, source: str) -> AssistantReply:
    """Greetings, help, goodbyes, and a yes/no/cancel with no transfer waiting."""
    return AssistantReply(
        reply=DIALOGUE_ACT_REPLIES[intent],
        confidence=confidence,
        source=source,
        data={"require_password": False},
    )


REPORT_PROBLEM = (
    "I'm sorry about that. I can't change or reverse a payment myself, and I won't read out "
    "your statement for this. If you don't recognise a payment, report it as fraud, or ask "
    "to talk to a person and our support team will look into it."
)
OWN_ACCOUNTS = (
    "I can't move money between your own accounts. I can send money to your contacts, "
    "check your balance, or read your transactions."
)


def report_problem(confidence: float, source: str) -> AssistantReply:
    """A complaint or dispute about a transaction: the fraud report and a human
    (POST /api/v1/fraud/report, POST /chat/escalate), never a statement read-out."""
    return AssistantReply(
        reply=REPORT_PROBLEM,
        confidence=confidence,
        source=source,
        data={"require_password": False, "offers": ["fraud_report", "escalate"]},
    )


def own_accounts(confidence: float, source: str) -> AssistantReply:
    """Moving money between the user's own accounts, which this assistant does not do."""
    return AssistantReply(
        reply=OWN_ACCOUNTS,
        confidence=confidence,
        source=source,
        data={"require_password": False},
    )


def ask_recipient(amount: int | None, contacts: list[ContactEntry]) -> str:
    what = "the money" if amount is None else format_rupees(amount)
    return f"Who should I send {what} to? Available contacts: {contact_list(contacts)}."


def ask_amount(receiver: str) -> str:
    return f"How much should I send to {receiver}?"


def confirm_transfer(amount: int, receiver: str) -> str:
    return f"I'll send {format_rupees(amount)} to {receiver}. Please confirm with your password."


def transferred(amount: int, receiver: str, balance: int) -> str:
    return (
        f"Successfully transferred {format_rupees(amount)} to {receiver}. "
        f"Your new balance is {format_rupees(balance)}."
    )


NO_TRANSACTIONS = "You have no transactions yet."


# Conversations: a transfer built up over several turns (dialogue/conversation.py).
CANCELLED = "Okay, I cancelled the transfer. Nothing was sent."
GOODBYE_CANCELLED = "Okay, I cancelled the unfinished transfer. Nothing was sent. Goodbye!"
EXPIRED = "Your unfinished transfer timed out, so nothing was sent."
NOT_CAUGHT = "Sorry, I didn't catch that. "
NOTHING_TO_REPEAT = "I haven't said anything yet. " + CAPABILITIES
PASSWORD_IN_MESSAGE = (
    "Please never say or type your password as a message: it belongs in the password field. "
    "To be safe I cancelled the transfer. Nothing was sent."
)
PIN_IN_MESSAGE = (
    "Please never say your PIN aloud: type it on the keypad. "
    "To be safe I cancelled the transfer. Nothing was sent."
)


def store_unavailable() -> AssistantReply:
    return AssistantReply(
        reply=STORE_UNAVAILABLE, confidence=0, source=SYSTEM, data={"require_password": False}
    )


def bank_unreachable() -> AssistantReply:
    """What a WebSocket or spoken turn answers while the database is away (HTTP: a 503)."""
    return AssistantReply(
        reply=BANK_UNREACHABLE, confidence=0, source=SYSTEM, data={"require_password": False}
    )


def nothing_to_confirm() -> AssistantReply:
    """A password (or an empty message) when no transfer waits for one."""
    return AssistantReply(
        reply="There is no transfer waiting for your password.",
        confidence=0,
        source=SYSTEM,
        data={"require_password": False},
    )


def repeat(last_reply: str | None, confidence: float, source: str) -> AssistantReply:
    return AssistantReply(
        reply=last_reply or NOTHING_TO_REPEAT,
        confidence=confidence,
        source=source,
        data={"require_password": False},
    )


def sentence(text: str) -> str:
    """The text ending like a sentence, so that another can follow it."""
    return text if text.endswith((".", "?", "!", ")")) else f"{text}."


def did_you_mean(receiver: str) -> str:
    return f"Did you mean {receiver}?"


def confirm_with_password(amount: int, receiver: str, factor: Factor = "password") -> str:
    if factor == "pin":
        return (
            f"Send {format_rupees(amount)} to {receiver}? "
            "Please type your PIN on the keypad, then press hash."
        )
    return f"Send {format_rupees(amount)} to {receiver}? Please confirm with your password."


def confirm_large(amount: int, receiver: str) -> str:
    return (
        f"That is a large amount. Send {format_rupees(amount)} to {receiver}? "
        "Please say yes to go on."
    )


def unusual(reasons: list[str]) -> str:
    """Why a transfer looks unusual (banking/fraud.py's reasons), as one spoken sentence."""
    listed = reasons[0] if len(reasons) == 1 else f"{', '.join(reasons[:-1])} and {reasons[-1]}"
    return f"This transfer looks unusual: it is {listed}."


def confirm_unusual(amount: int, receiver: str, reasons: list[str]) -> str:
    """A conversation's question before a high-risk transfer: only a yes goes on."""
    return (
        f"{unusual(reasons)} Send {format_rupees(amount)} to {receiver}? "
        "Say yes to go ahead, or no to cancel."
    )


def confirm_unusual_transfer(amount: int, receiver: str, reasons: list[str]) -> str:
    """The stateless first step of a high-risk transfer: the password is the go-ahead."""
    return f"{unusual(reasons)} {confirm_transfer(amount, receiver)}"


def insufficient_then_ask(balance: int, amount: int, receiver: str) -> str:
    return f"{insufficient_balance(balance, amount)} {ask_amount(receiver)} Or say cancel."


def help_during(question: str) -> str:
    return f"I'm setting up a transfer for you. Say cancel to stop it. {question}"


def back_to_transfer(question: str) -> str:
    return f"About your transfer: {question}"


def balance(amount: int) -> str:
    return f"Your current account balance is {format_rupees(amount)}"


def recent_transactions(descriptions: list[str], spoken: int) -> str:
    """The first `spoken` descriptions, then how many more are on screen."""
    said = " ".join(f"{text}." for text in descriptions[:spoken])
    more = len(descriptions) - spoken
    return f"Your recent transactions: {said}" + (f" (and {more} more)" if more > 0 else "")


# Spending questions (check_spending): how each category and period is said.
SPENT_ON = {
    "groceries": "groceries",
    "dining": "dining out",
    "transport": "transport",
    "shopping": "shopping",
    "bills": "bills",
    "entertainment": "entertainment",
    "health": "health",
    "salary": "salary",
    "transfer": "transfers to people",
    "other": "other things",
}
PERIOD_SAID = {
    "today": "today",
    "yesterday": "yesterday",
    "this_week": "this week",
    "last_week": "last week",
    "this_month": "this month",
    "last_month": "last month",
    "this_year": "this year",
}
SPENDING_CATEGORIES_SAID = 3


def spent(total: int, category: str | None, period: str, by_category: list[tuple[str, int]]) -> str:
    """'You spent ₹4350 on groceries this month.'; without a category, the total and where
    most of it went (the largest SPENDING_CATEGORIES_SAID categories)."""
    when = PERIOD_SAID[period]
    if category is not None:
        what = SPENT_ON[category]
        if total == 0:
            return f"You spent nothing on {what} {when}."
        return f"You spent {format_rupees(total)} on {what} {when}."
    if total == 0:
        return f"You spent nothing {when}."
    if len(by_category) == 1:
        return (
            f"You spent {format_rupees(total)} {when}, all of it on {SPENT_ON[by_category[0][0]]}."
        )
    largest = [
        f"{SPENT_ON[name]} ({format_rupees(paise)})"
        for name, paise in by_category[:SPENDING_CATEGORIES_SAID]
    ]
    where = largest[0] if len(largest) == 1 else f"{', '.join(largest[:-1])} and {largest[-1]}"
    return f"You spent {format_rupees(total)} {when}. Most of it went on {where}."


# The telephone (voice/phone.py).
UNKNOWN_CALLER = (
    "Sorry, this number is not registered with us, so I can't help you on this call. "
    "Please call from the number registered on your account. Goodbye."
)


PHONE_PIN_FIRST = (
    "Welcome. To reach your account, please type your PIN on the keypad, then press hash."
)
PHONE_PIN_AGAIN = "That PIN is not right. Please type your PIN, then press hash."


def phone_locked(lock_s: int) -> str:
    return f"Too many wrong PINs. Please call again in {max(1, lock_s // 60)} minutes. Goodbye."


def phone_greeting(first_name: str) -> str:
    return (
        f"Hello {first_name}. How can I help you? "
        "You can ask for your balance, your transactions, or send money."
    )
