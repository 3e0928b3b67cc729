"""Per-user limits of the contract: requests per minute and transfers per hour.

Each limit counts in fixed windows aligned to the clock (a 60 s window ends at a whole
minute), so every server process agrees on when a window ends and can say so in
`X-RateLimit-Reset`. The counters live in the key-value store (banking/store.py; Redis
when configured), so they hold across processes. The third limit of the contract,
password attempts, is the lockout (banking/lockout.py). Logins and registrations are also
limited per client address (banking/logins.py counts them here).
"""

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

from banking.store import KeyValueStore, StoreUnavailable


class LimitSettings(BaseModel):
    """Values come from config.yaml, which documents each key."""

    model_config = ConfigDict(extra="forbid")

    requests: int
    requests_window_s: int
    transfers: int
    transfers_window_s: int
    logins: int
    logins_window_s: int
    registrations: int
    registrations_window_s: int


@dataclass(frozen=True)
class Quota:
    """Where a user stands in one limit's current window."""

    limit: int
    used: int
    reset: int  # Unix time at which the window ends

    @property
    def exceeded(self) -> bool:
        return self.used > self.limit

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def retry_after_s(self) -> int:
        """Whole seconds until the window ends (at least 1)."""
        return max(1, math.ceil(self.reset - time.time()))

    def reset_time(self) -> str:
        return datetime.fromtimestamp(self.reset, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }


class Limits:
    def __init__(self, store: KeyValueStore, settings: LimitSettings) -> None:
        self.store = store
        self.settings = settings

    def request(self, user_id: int) -> Quota | None:
        """Count one request of the user; None when the store does not answer.

        Then nothing is limited, so balance and history questions keep working; every
        transfer is refused anyway, because the password counters live in the same store.
        """
        try:
            return self._count("requests", user_id, self.settings.requests, 1)
        except StoreUnavailable:
            return None

    def address_request(self, address: str) -> Quota | None:
        """Count one request from a client address, under the same limit as a user's; for
        routes that act for nobody (POST /test-nlu). None when the store does not answer."""
        try:
            return self._count("requests", f"address:{address}", self.settings.requests, 1)
        except StoreUnavailable:
            return None

    def reserve_transfer(self, user_id: int) -> Quota:
        """Count a transfer about to be made; `release_transfer` if it is not made after all.

        Raises StoreUnavailable when the counter cannot be kept.
        """
        return self._count("transfers", user_id, self.settings.transfers, 1)

    def release_transfer(self, user_id: int, quota: Quota) -> None:
        """Give back a reservation: the transfer was refused or not made."""
        if quota.reset > time.time():
            self._count("transfers", user_id, self.settings.transfers, -1, quota.reset)

    def reserve_login(self, address: str) -> Quota:
        """Count a login attempt from a client address before its password is checked;
        `release_login` when it succeeds, so only failed logins use up the limit.

        Raises StoreUnavailable when the counter cannot be kept.
        """
        return self._count("logins", address, self.settings.logins, 1)

    def release_login(self, address: str, quota: Quota) -> None:
        if quota.reset > time.time():
            self._count("logins", address, self.settings.logins, -1, quota.reset)

    def registration(self, address: str) -> Quota:
        """Count a registration from a client address. Raises StoreUnavailable."""
        return self._count("registrations", address, self.settings.registrations, 1)

    def _count(
        self, name: str, subject: int | str, limit: int, by: int, reset: int | None = None
    ) -> Quota:
        window_s = getattr(self.settings, f"{name}_window_s")
        if reset is None:
            reset = (int(time.time()) // window_s + 1) * window_s
        key = f"limit:{name}:{subject}:{reset}"
        used = self.store.increment(key, window_s + 1, by)
        return Quota(limit=limit, used=used, reset=reset)
