"""An AudioSocket call's registration is claimed once, even by two server processes at once."""

import threading
import uuid
from collections.abc import Iterator

import pytest

from banking.store import RedisStore
from tests.conftest import REDIS_URL
from voice.audiosocket_server import CallRegistry

TRIALS = 200


@pytest.fixture
def stores(redis_prefix: str) -> Iterator[tuple[RedisStore, RedisStore]]:
    """Two connections to one Redis, as two server processes have."""
    first, second = (RedisStore(REDIS_URL, 60, redis_prefix, 2.0) for _ in range(2))
    yield first, second
    first.close()
    second.close()


def test_two_connections_with_one_uuid_get_the_caller_once(
    stores: tuple[RedisStore, RedisStore],
) -> None:
    """Each trial registers a call and lets two processes claim its UUID at the same moment:
    exactly one of them may hear the caller's number (a read, then a delete, let both)."""
    registries = [CallRegistry(store, 60) for store in stores]
    doubles = 0
    for _ in range(TRIALS):
        claimed = race(registries, registries[0].register("+15550100001"))
        assert claimed.count("+15550100001") >= 1 and set(claimed) <= {"+15550100001", None}
        doubles += None not in claimed
    assert doubles == 0, f"{doubles} of {TRIALS} registrations were claimed twice"


def race(registries: list[CallRegistry], call_id: uuid.UUID) -> list[str | None]:
    """Both registries claim the call at the same moment; what each got."""
    start = threading.Barrier(2)
    claimed: list[str | None] = [None, None]

    def claim(index: int) -> None:
        start.wait()
        claimed[index] = registries[index].claim(call_id)

    threads = [threading.Thread(target=claim, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return claimed
