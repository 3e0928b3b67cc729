"""The key-value store: conversation state between turns, and the counters of the request
and transfer limits and the password lockout; in this process, or in Redis.

The store keeps opaque JSON text under a key, each key expiring a fixed time after its
last save, and counters that expire a given time after their first increment. Redis lets
several server processes continue each other's conversations and share the counters.
Its settings are config.yaml's `sessions` section.
"""

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import redis
from pydantic import BaseModel, ConfigDict


class StoreUnavailable(Exception):
    """The store did not answer: no conversation goes on and no money moves until it does."""


class StoreSettings(BaseModel):
    """Values come from config.yaml, which documents each key."""

    model_config = ConfigDict(extra="forbid")

    redis_url: str
    ttl_s: int
    key_prefix: str
    timeout_s: float


class KeyValueStore(Protocol):
    def load(self, key: str) -> str | None: ...

    def save(self, key: str, state: str, ttl_s: int | None = None) -> None:
        """Keep `state` for `ttl_s` seconds (default: the store's session time)."""
        ...

    def delete(self, key: str) -> None: ...

    def take(self, key: str) -> str | None:
        """Load and delete in one step: of two processes taking a key, one gets it."""
        ...

    def expires_in(self, key: str) -> int | None:
        """Whole seconds (at least 1) until the key expires; None if it does not exist."""
        ...

    def increment(self, key: str, ttl_s: int, by: int = 1) -> int:
        """Add `by` to a counter that expires `ttl_s` after its first increment; the new count."""
        ...

    def status(self) -> str:
        """ "ready", or what is wrong."""
        ...

    def close(self) -> None: ...


class MemoryStore:
    """The embedded default: one process, nothing shared, gone on restart."""

    def __init__(self, ttl_s: int) -> None:
        self.ttl_s = ttl_s
        self._states: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def load(self, key: str) -> str | None:
        with self._lock:
            expires, state = self._states.get(key, (0.0, None))
            if state is not None and expires <= time.monotonic():
                del self._states[key]
                return None
            return state

    def save(self, key: str, state: str, ttl_s: int | None = None) -> None:
        with self._lock:
            self._drop_expired()
            self._states[key] = (time.monotonic() + (ttl_s or self.ttl_s), state)

    def delete(self, key: str) -> None:
        with self._lock:
            self._states.pop(key, None)

    def take(self, key: str) -> str | None:
        with self._lock:
            expires, state = self._states.pop(key, (0.0, None))
            return state if expires > time.monotonic() else None

    def expires_in(self, key: str) -> int | None:
        with self._lock:
            expires, _ = self._states.get(key, (0.0, None))
            left = expires - time.monotonic()
            return max(1, math.ceil(left)) if left > 0 else None

    def increment(self, key: str, ttl_s: int, by: int = 1) -> int:
        with self._lock:
            expires, value = self._states.get(key, (0.0, "0"))
            if expires <= time.monotonic():
                expires, value = time.monotonic() + ttl_s, "0"
            count = int(value) + by
            self._states[key] = (expires, str(count))
            return count

    def status(self) -> str:
        return "ready"

    def close(self) -> None:
        with self._lock:
            self._states.clear()

    def _drop_expired(self) -> None:
        now = time.monotonic()
        for key in [key for key, (expires, _) in self._states.items() if expires <= now]:
            del self._states[key]


@contextmanager
def _answering() -> Iterator[None]:
    """Redis failing to answer, as the store's own error."""
    try:
        yield
    except redis.RedisError as error:
        raise StoreUnavailable(str(error)) from error


class RedisStore:
    """Shared by every process that points at the same Redis; Redis expires the keys."""

    def __init__(self, url: str, ttl_s: int, key_prefix: str, timeout_s: float) -> None:
        self.ttl_s = ttl_s
        self.key_prefix = key_prefix
        self._redis = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )

    def load(self, key: str) -> str | None:
        with _answering():
            state = self._redis.get(self.key_prefix + key)
        # Bytes: the client is made without decode_responses.
        return state.decode() if isinstance(state, bytes) else state

    def save(self, key: str, state: str, ttl_s: int | None = None) -> None:
        with _answering():
            self._redis.set(self.key_prefix + key, state, ex=ttl_s or self.ttl_s)

    def delete(self, key: str) -> None:
        with _answering():
            self._redis.delete(self.key_prefix + key)

    def take(self, key: str) -> str | None:
        with _answering():
            state = self._redis.getdel(self.key_prefix + key)  # Redis 6.2 and later
        return state.decode() if isinstance(state, bytes) else state

    def expires_in(self, key: str) -> int | None:
        with _answering():
            left_ms = int(self._redis.pttl(self.key_prefix + key))
        # -2: no such key; -1: no expiry (never so here: every key is saved with one).
        return max(1, math.ceil(left_ms / 1000)) if left_ms >= 0 else None

    def increment(self, key: str, ttl_s: int, by: int = 1) -> int:
        with _answering(), self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self.key_prefix + key, 0, ex=ttl_s, nx=True)
            pipe.incrby(self.key_prefix + key, by)
            return int(pipe.execute()[1])

    def status(self) -> str:
        try:
            self._redis.ping()
        except redis.RedisError:
            return "unavailable"
        return "ready"

    def memory_used_bytes(self) -> int:
        """Redis's own figure of the memory it uses (INFO memory)."""
        with _answering():
            return int(self._redis.info("memory")["used_memory"])

    def close(self) -> None:
        self._redis.close()


def make_store(settings: StoreSettings) -> MemoryStore | RedisStore:
    """Redis when a URL is configured, else this process's memory."""
    if settings.redis_url:
        return RedisStore(
            settings.redis_url, settings.ttl_s, settings.key_prefix, settings.timeout_s
        )
    return MemoryStore(settings.ttl_s)
