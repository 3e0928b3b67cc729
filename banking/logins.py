"""Logging in and registering under limits: per account (email) and per client address.

Every login attempt first takes a turn from its client address's failed-login limit and
from its email's lockout counter (banking/lockout.py), both in the key-value store so that
every server process agrees, and only then costs a bcrypt check: a flood of guesses is
refused before it can fill the CPU. A successful login gives the address's turn back and
clears the email's count. Five wrong passwords for one email lock its logins for the
lockout's `lock_s`, even with the right password; unknown emails are counted the same
way, so the answers do not tell which emails exist.

The login counter is not the transfer-password counter, although the password is the same:
a stranger who knows a customer's email can lock their logins, but must not be able to
lock their payments (sessions already open keep working). So a guesser gets at most
`attempts` tries per window at each door: at login without a session, at a transfer only
with a session.
"""

import hashlib

from banking.limits import Limits, Quota
from banking.lockout import Attempts, LockoutSettings
from banking.store import KeyValueStore
from banking.users import Profile, Users, normal_email


class TooManyAttempts(Exception):
    """The client address used up its login (or registration) limit: retry later."""

    def __init__(self, quota: Quota, what: str, window_s: int) -> None:
        super().__init__(f"{what} limit of {quota.limit} reached")
        self.quota, self.what, self.window_s = quota, what, window_s


class LoginLocked(Exception):
    """Too many wrong passwords for this email: its logins wait `retry_after_s`."""

    def __init__(self, retry_after_s: int, lock_s: int) -> None:
        super().__init__(f"login locked for {retry_after_s} s")
        self.retry_after_s, self.lock_s = retry_after_s, lock_s


class Logins:
    def __init__(
        self, users: Users, store: KeyValueStore, lockout: LockoutSettings, limits: Limits
    ) -> None:
        self.users = users
        self.limits = limits
        self.attempts = Attempts(store, lockout, "login-failures")

    def log_in(self, email: str, password: str, address: str) -> Profile | None:
        """The user, or None for a wrong email or password.

        Raises TooManyAttempts, LoginLocked, or StoreUnavailable (no counters: no check).
        """
        quota = self.limits.reserve_login(address)
        if quota.exceeded:
            raise TooManyAttempts(quota, "login", self.limits.settings.logins_window_s)
        subject = _digest(email)
        found: list[Profile] = []

        def right() -> bool:
            profile = self.users.authenticate(email, password)
            found.extend([profile] if profile else [])
            return profile is not None

        verdict = self.attempts.guess(subject, right)
        if verdict == "right":
            self.limits.release_login(address, quota)
            return found[0]
        if verdict == "wrong":
            return None
        lock_s = self.attempts.settings.lock_s
        raise LoginLocked(self.attempts.lock_ends_in_s(subject), lock_s)

    def register(self, email: str, name: str, password: str, address: str) -> Profile:
        """users.register, counted against the address's registration limit first.

        Raises TooManyAttempts, StoreUnavailable, or banking.users.EmailTaken.
        """
        quota = self.limits.registration(address)
        if quota.exceeded:
            window_s = self.limits.settings.registrations_window_s
            raise TooManyAttempts(quota, "registration", window_s)
        return self.users.register(email, name, password)


def _digest(email: str) -> str:
    """The store's key names no email (personal data): a digest of its normal form."""
    return hashlib.sha256(normal_email(email).encode(errors="replace")).hexdigest()[:32]
