"""What the bank says when it refuses a transfer (or does not know the user), on every
channel.

The REST API (banking/api/) and the conversations (dialogue/) answer the same refusal in
the same words, so the words live here, below both; dialogue/reply.py holds everything
else the assistant says.
"""

from banking.directory import ContactEntry, Factor
from banking.money import format_rupees

USER_NOT_FOUND = "User not found. Please log in again."
WRONG_PASSWORD = "Incorrect password. Transaction cancelled."
WRONG_PIN = "Incorrect PIN. Transaction cancelled."
AMOUNT_NOT_POSITIVE = "The amount must be more than zero."
AMOUNT_HAS_FRACTION_OF_PAISA = "Amounts can have at most two decimal places, like ₹10.50."
RECIPIENT_UNAVAILABLE = "That contact's account is not available. Nothing was sent."
ALREADY_MADE = "That transfer was already made. I did not send it again."
STORE_UNAVAILABLE = (
    "Sorry, part of the service is down, so I can't do that right now. Nothing was sent. "
    "Please try again in a moment."
)

# The database is unreachable (banking/db.py DATABASE_UNREACHABLE). Whether a transfer that
# was being written when it went away was made is not known here: a retry with the same
# Idempotency-Key settles it, paying at most once.
BANK_UNREACHABLE = "Sorry, I can't reach the bank right now. Please try again in a moment."


def contact_list(contacts: list[ContactEntry]) -> str:
    return ", ".join(contact.label for contact in contacts)


def unknown_recipient(name: str, contacts: list[ContactEntry]) -> str:
    return (
        f"I can't find '{name.title()}' in the system. "
        f"Available contacts: {contact_list(contacts)}."
    )


def insufficient_balance(balance: int, amount: int) -> str:
    return (
        f"Insufficient balance. You have {format_rupees(balance)} "
        f"but trying to send {format_rupees(amount)}."
    )


def amount_too_large(limit: int) -> str:
    return f"The most I can send in one transfer is {format_rupees(limit)}."


def password_refused(verdict: str, lock_s: int, factor: Factor = "password") -> str:
    """A wrong password (or PIN) as documented; once too many were wrong, the lockout."""
    if verdict == "wrong":
        return WRONG_PIN if factor == "pin" else WRONG_PASSWORD
    what = "PINs" if factor == "pin" else "passwords"
    return (
        f"Too many wrong {what}. Transfers are locked for {max(1, lock_s // 60)} minutes. "
        "Nothing was sent."
    )


def transfer_limit(limit: int, window_s: int, retry_after_s: int) -> str:
    """The hourly transfer limit reached: when the user may send again."""
    minutes = max(1, round(retry_after_s / 60))
    return (
        f"You have reached the limit of {limit} transfers per {_period(window_s)}. "
        f"Nothing was sent. You can send money again in {minutes} "
        f"minute{'s' if minutes != 1 else ''}."
    )


def _period(seconds: int) -> str:
    if seconds == 3600:
        return "hour"
    return f"{seconds // 60} minutes" if seconds % 60 == 0 else f"{seconds} seconds"
