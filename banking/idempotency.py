"""Idempotency-Key: a retried request gets the first one's answer and moves no money again.

A channel that can execute a transfer wraps its turn in `idempotent()` (banking/api/deps.py,
the HTTP side: the header, the refusals and the replayed response). The first request
with a key claims it (a database row, per user, so it survives a crash or restart), runs,
and stores its status and body; a retry with the same key and the same request gets that
stored answer, marked `Idempotent-Replayed: true`. The same key with another request is
refused with 422; while the first is still running, a retry gets 409 and `Retry-After`.

A claim whose server died mid-request is taken over once its lease has run out. The turn
then runs again, with the ledger transfer id derived from the key: a transfer the dead
server had committed is not made twice (the ledger refuses a second transfer with an id).
The password is no part of the stored request or its fingerprint.
"""

import hashlib
import json
import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine, UniqueConstraint, delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from banking.db import writing

CLAIM_TRIES = 3
_TRANSFER_IDS = uuid.UUID("5c0e7f4e-0b1d-4c44-9a43-0a3f1d2f6b71")


class IdempotencySettings(BaseModel):
    """Values come from config.yaml, which documents each key."""

    model_config = ConfigDict(extra="forbid")

    lease_s: float


class IdempotentRequest(SQLModel, table=True):
    __tablename__ = "idempotent_request"
    __table_args__ = (UniqueConstraint("user_id", "key", name="one_request_per_key"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(index=True)
    key: str
    fingerprint: str = Field(description="SHA-256 of the channel and the request, no password")
    created_at: float = Field(description="Unix time")
    lease_until: float = Field(description="Unix time until which the first request owns it")
    status_code: int | None = None
    response: str | None = Field(default=None, description="JSON body of the first answer")


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: Any


class KeyReused(Exception):
    """The key was first used with another request."""


class KeyInProgress(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class IdempotencyStore:
    def __init__(self, engine: Engine, lease_s: float) -> None:
        self.engine = engine
        self.lease_s = lease_s

    def claim(self, user_id: int, key: str, fingerprint: str) -> Replay | None:
        """None when this request now owns the key and must run; else the first answer.

        Raises KeyReused or KeyInProgress.
        """
        for _ in range(CLAIM_TRIES - 1):
            try:
                return self._claim(user_id, key, fingerprint)
            except IntegrityError:
                continue  # another request inserted the key first: look again
        return self._claim(user_id, key, fingerprint)

    def _claim(self, user_id: int, key: str, fingerprint: str) -> Replay | None:
        now = time.time()
        with Session(writing(self.engine)) as session, session.begin():
            query = (
                select(IdempotentRequest)
                .where(IdempotentRequest.user_id == user_id, IdempotentRequest.key == key)
                .with_for_update()
            )
            row = session.exec(query).first()
            if row is None:
                row = IdempotentRequest(
                    user_id=user_id,
                    key=key,
                    fingerprint=fingerprint,
                    created_at=now,
                    lease_until=now + self.lease_s,
                )
            elif row.fingerprint != fingerprint:
                raise KeyReused(key)
            elif row.status_code is not None and row.response is not None:
                return Replay(row.status_code, json.loads(row.response))
            elif row.lease_until > now:
                raise KeyInProgress(max(1, math.ceil(row.lease_until - now)))
            else:  # its server died mid-request: take it over
                row.lease_until = now + self.lease_s
            session.add(row)
        return None

    def finish(self, user_id: int, key: str, status_code: int, body: bytes) -> None:
        with Session(writing(self.engine)) as session, session.begin():
            session.exec(
                update(IdempotentRequest)
                .where(col(IdempotentRequest.user_id) == user_id)
                .where(col(IdempotentRequest.key) == key)
                .values(status_code=status_code, response=body.decode())
            )

    def release(self, user_id: int, key: str) -> None:
        """Forget an unfinished claim (its request failed), so that a retry runs again."""
        with Session(writing(self.engine)) as session, session.begin():
            session.exec(
                delete(IdempotentRequest)
                .where(col(IdempotentRequest.user_id) == user_id)
                .where(col(IdempotentRequest.key) == key)
                .where(col(IdempotentRequest.status_code).is_(None))
            )


def transfer_id_for(user_id: int, key: str) -> str:
    """The ledger id of the transfer a keyed request makes: the same on every retry."""
    return str(uuid.uuid5(_TRANSFER_IDS, f"{user_id}:{key}"))


def fingerprint(channel: str, payload: dict[str, Any]) -> str:
    """What tells two requests apart: the channel and the request as it read it."""
    request_text = json.dumps({"channel": channel, "request": payload}, sort_keys=True)
    return hashlib.sha256(request_text.encode()).hexdigest()
