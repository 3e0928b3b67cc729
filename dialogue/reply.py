"""AssistantReply: the documented /assistant response, and every text the assistant says."""

from typing import Any, Literal

from pydantic import BaseModel, Field

from banking import ContactEntry, format_rupees

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

    def body(self) -> dict[str, Any]:
        """The JSON body as documented: `data` is left out when there is none."""
        return self.model_dump(exclude={"data"} if self.data is None else set())


def user_not_found() -> AssistantReply:
    return AssistantReply(
        reply="User not found. Please log in again.",
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
}


def dialogue_act(intent: str, confidence: float, source: str) -> AssistantReply:
    """Greetings, help, goodbyes, and a yes/no/cancel with no transfer waiting."""
    return AssistantReply(
        reply=DIALOGUE_ACT_REPLIES[intent],
        confidence=confidence,
        source=source,
        data={"require_password": False},
    )


def contact_list(contacts: list[ContactEntry]) -> str:
    return ", ".join(contact.label for contact in contacts)


def unknown_recipient(name: str, contacts: list[ContactEntry]) -> str:
    return (
        f"I can't find '{name.title()}' in the system. "
        f"Available contacts: {contact_list(contacts)}."
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


def insufficient_balance(balance: int, amount: int) -> str:
    return (
        f"Insufficient balance. You have {format_rupees(balance)} "
        f"but trying to send {format_rupees(amount)}."
    )


WRONG_PASSWORD = "Incorrect password. Transaction cancelled."
AMOUNT_NOT_POSITIVE = "The amount must be more than zero."
AMOUNT_HAS_FRACTION_OF_PAISA = "Amounts can have at most two decimal places, like ₹10.50."
RECIPIENT_UNAVAILABLE = "That contact's account is not available. Nothing was sent."
NO_TRANSACTIONS = "You have no transactions yet."


def amount_too_large(limit: int) -> str:
    return f"The most I can send in one transfer is {format_rupees(limit)}."


def balance(amount: int) -> str:
    return f"Your current account balance is {format_rupees(amount)}"


def recent_transactions(descriptions: list[str], spoken: int) -> str:
    """The first `spoken` descriptions, then how many more are on screen."""
    said = " ".join(f"{text}." for text in descriptions[:spoken])
    more = len(descriptions) - spoken
    return f"Your recent transactions: {said}" + (f" (and {more} more)" if more > 0 else "")
