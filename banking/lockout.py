"""Password attempts per user, shared by every channel and server process.

A PIN typed on a phone's keypad is a password attempt too: the same counters, so five
wrong ones, of either kind, lock transfers on every channel.

After `attempts` wrong passwords within `window_s`, the user's transfers are locked for
`lock_s`, even with the right password: guessing costs the attacker the cooling period.
The counters live in the key-value store (banking/store.py; Redis when configured), so
they hold across processes. When the store does not answer, no password is checked and
no money moves.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict

from banking import Directory, Factor
from banking.store import KeyValueStore

# "locked_now": this wrong password was the one too many, and locked transfers.
Verdict = Literal["right", "wrong", "locked", "locked_now"]


class LockoutSettings(BaseModel):
    """Values come from config.yaml, which documents each key."""

    model_config = ConfigDict(extra="forbid")

    attempts: int
    window_s: int
    lock_s: int


class PasswordGuard:
    def __init__(
        self, store: KeyValueStore, directory: Directory, settings: LockoutSettings
    ) -> None:
        self.store = store
        self.directory = directory
        self.settings = settings

    def locked(self, user_id: int) -> bool:
        """Whether the user's transfers are locked: then no password is even asked for."""
        return self.store.load(_lock_key(user_id)) is not None

    def check(self, user_id: int, password: str, factor: Factor = "password") -> Verdict:
        """Compare the password (or PIN) unless the user is locked out; count a wrong one.

        Raises StoreUnavailable when the counters cannot be read or written.
        """
        if self.locked(user_id):
            return "locked"
        if self.directory.check_factor(user_id, password, factor):
            self.store.delete(_failures_key(user_id))
            return "right"
        failures = self.store.increment(_failures_key(user_id), self.settings.window_s)
        if failures >= self.settings.attempts:
            self.store.save(_lock_key(user_id), "locked", self.settings.lock_s)
            self.store.delete(_failures_key(user_id))
            return "locked_now"
        return "wrong"


def _failures_key(user_id: int) -> str:
    return f"password-failures:{user_id}"


def _lock_key(user_id: int) -> str:
    return f"password-lock:{user_id}"
