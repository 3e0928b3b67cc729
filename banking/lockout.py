"""Guesses at a secret, counted per subject and shared by every channel and server process.

Two counters use it: the transfer password and PIN per user (`PasswordGuard`: a PIN
typed on a phone's keypad is a password attempt too, so five wrong ones, of either kind,
lock transfers on every channel), and the login password per email (banking/logins.py).

After `attempts` wrong guesses within `window_s`, the subject is locked for `lock_s`, even
with the right secret: guessing costs the attacker the cooling period. Two counters per
subject, in the key-value store (banking/store.py; Redis when configured): the wrong
guesses, and the checks under way. A guess takes a place among the checks under way (an
atomic increment) *before* the secret is compared, and only while the wrong guesses and the
checks under way together stay within `attempts`; otherwise it waits for a place. So
guesses sent at the same moment, to any number of server processes, get at most
`attempts` bcrypt checks before the lock, while a user's own simultaneous transfers with
the right password only wait their turn (they used to be refused as "locked"). A right
secret clears the wrong count; a wrong one is counted before its place is given back, and
the one that fills the count locks. When the store does not answer, no secret is checked
and no money moves.
"""

import time
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict

from banking import Directory, Factor
from banking.store import KeyValueStore, StoreUnavailable

# "locked_now": this wrong password was the one too many, and locked transfers.
Verdict = Literal["right", "wrong", "locked", "locked_now"]
# A guess waits this long at most for a place among the checks under way (each ~0.25 s of
# bcrypt), looking again every CHECK_POLL_S.
CHECK_WAIT_S = 30
CHECK_POLL_S = 0.02
# The count of checks under way expires this long after it was started, in case a process
# died during a check.
CHECKING_TTL_S = 120


class LockoutSettings(BaseModel):
    """Values come from config.yaml, which documents each key."""

    model_config = ConfigDict(extra="forbid")

    attempts: int
    window_s: int
    lock_s: int


class Attempts:
    """One counter of guesses per subject (a user id, an email's digest) under `name`."""

    def __init__(self, store: KeyValueStore, settings: LockoutSettings, name: str) -> None:
        self.store = store
        self.settings = settings
        self.name = name

    def locked(self, subject: str) -> bool:
        """Whether no guess is allowed now: as many were wrong as the window allows."""
        count = self.store.load(self._key(subject))
        return count is not None and int(count) >= self.settings.attempts

    def lock_ends_in_s(self, subject: str) -> int:
        """Seconds until the subject may guess again (at least 1)."""
        return self.store.expires_in(self._key(subject)) or 1

    def guess(self, subject: str, right: Callable[[], bool]) -> Verdict:
        """Take a place among the checks under way, then call `right` to compare the secret.

        Raises StoreUnavailable when the counters cannot be read or written, or when no
        place came free within CHECK_WAIT_S.
        """
        key = self._key(subject)
        deadline = time.monotonic() + CHECK_WAIT_S
        while not self._take_place(subject):
            if self.locked(subject):
                return "locked"
            if time.monotonic() > deadline:
                raise StoreUnavailable("no place to check a secret came free")
            time.sleep(CHECK_POLL_S)
        try:
            if right():
                self.store.delete(key)
                return "right"
            wrong = self.store.increment(key, self.settings.window_s)
        finally:
            self._give_place_back(subject)
        if wrong >= self.settings.attempts:
            # The count becomes the lock: full for lock_s from now.
            self.store.save(key, str(self.settings.attempts), self.settings.lock_s)
            return "locked_now"
        return "wrong"

    def _take_place(self, subject: str) -> bool:
        """Whether this guess may be checked now: the checks under way (this one counted)
        and the wrong guesses fit in `attempts`. The wrong count is read after the place
        is taken, so a check that ends meanwhile is counted twice, never not at all."""
        under_way = self.store.increment(self._checking_key(subject), CHECKING_TTL_S)
        wrong = int(self.store.load(self._key(subject)) or 0)
        if wrong + under_way <= self.settings.attempts:
            return True
        self._give_place_back(subject)
        return False

    def _give_place_back(self, subject: str) -> None:
        key = self._checking_key(subject)
        if self.store.increment(key, CHECKING_TTL_S, by=-1) < 0:
            self.store.delete(key)  # the counter expired during a check: start again at 0

    def _checking_key(self, subject: str) -> str:
        return f"{self.name}-checking:{subject}"

    def _key(self, subject: str) -> str:
        return f"{self.name}:{subject}"


class PasswordGuard:
    """The transfer password and PIN of each user: one counter for both factors."""

    def __init__(
        self, store: KeyValueStore, directory: Directory, settings: LockoutSettings
    ) -> None:
        self.directory = directory
        self.settings = settings
        self.attempts = Attempts(store, settings, "password-failures")

    def locked(self, user_id: int) -> bool:
        """Whether the user's transfers are locked: then no password is even asked for."""
        return self.attempts.locked(str(user_id))

    def check(self, user_id: int, password: str, factor: Factor = "password") -> Verdict:
        """Compare the password (or PIN) unless the user is locked out; count a wrong one.

        Raises StoreUnavailable when the counters cannot be read or written.
        """
        return self.attempts.guess(
            str(user_id), lambda: self.directory.check_factor(user_id, password, factor)
        )
