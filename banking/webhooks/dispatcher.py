"""The dispatcher: sends the outbox's due deliveries, retrying with exponential back-off.

It runs as an asyncio task of the server (started and stopped by the app's lifespan) and
polls the outbox every `poll_interval_s`. A due row is claimed before it is sent: in one
short transaction it gets a lease (`lease_until`, `claim_token`). On PostgreSQL the rows
are picked with FOR UPDATE SKIP LOCKED, on SQLite under the database write lock, so two
server processes sharing a database never claim the same row at once; a process that
dies while holding a lease loses it when the lease runs out, and the row is sent again.

Delivery is therefore at least once: a receiver may see an event twice (the server died
after sending but before recording it) and should deduplicate by X-Webhook-Event-Id.
"""

import asyncio
import contextlib
import hashlib
import hmac
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import Engine, or_, update
from sqlmodel import Session, col, select

from banking.db import DATABASE_UNREACHABLE, writing
from banking.logs import log_event
from banking.webhooks.addresses import Target, UnsafeUrl, check_url
from banking.webhooks.models import WebhookDelivery, WebhookSubscription
from banking.webhooks.outbox import public_event_id
from banking.webhooks.settings import WebhookSettings

log = logging.getLogger("bankbot.webhooks")
USER_AGENT = "bankbot-webhooks/1.0"
MAX_ERROR_CHARS = 200


def signature(secret: str, body: bytes) -> str:
    """The X-Webhook-Signature value: HMAC-SHA256 of the raw body with the secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Claim:
    """A delivery this process holds the lease of."""

    delivery_id: int
    subscription_id: str
    token: str
    url: str
    secret: str
    body: str
    event_id: int
    event_type: str
    attempt: int  # this attempt's number, from 1


@dataclass(frozen=True)
class Outcome:
    """One attempt: the receiver's status code if it answered, and what went wrong if
    anything did (None: delivered)."""

    claim: Claim
    status_code: int | None
    error: str | None


class Dispatcher:
    def __init__(self, engine: Engine, settings: WebhookSettings) -> None:
        self.engine = engine
        self.settings = settings

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Delivers in the background while the block runs."""
        task = asyncio.create_task(self._run(), name="webhook-dispatcher")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as client:
            while True:
                try:
                    sent = await self.deliver_due(client)
                except DATABASE_UNREACHABLE:  # away for a moment: one line, try again later
                    log.warning("webhook dispatch: the database is unreachable; retrying")
                    sent = 0
                except Exception:
                    log.exception("webhook dispatch failed")
                    sent = 0
                if not sent:
                    await asyncio.sleep(self.settings.poll_interval_s)

    async def deliver_due(self, client: httpx.AsyncClient) -> int:
        """Claims up to batch_size due deliveries, makes one attempt at each (at once), and
        records the outcomes together: one write transaction per batch, not per row."""
        claims = await asyncio.to_thread(self._claim_due)
        if claims:
            outcomes = await asyncio.gather(*(self._attempt(client, claim) for claim in claims))
            await asyncio.to_thread(self._record, outcomes)
        return len(claims)

    def _claim_due(self) -> list[Claim]:
        now = datetime.now(UTC)
        due = (
            (col(WebhookDelivery.status) == "pending")
            & (col(WebhookDelivery.next_attempt_at) <= now)
            & or_(
                col(WebhookDelivery.lease_until).is_(None), col(WebhookDelivery.lease_until) < now
            )
        )
        # A cheap read first, so that an idle poll takes no write lock on SQLite.
        with Session(self.engine) as session:
            if session.exec(select(WebhookDelivery.id).where(due).limit(1)).first() is None:
                return []
        token = uuid.uuid4().hex
        lease_until = now + timedelta(seconds=self.settings.lease_s)
        claims = []
        with Session(writing(self.engine)) as session, session.begin():
            query = (
                select(WebhookDelivery, WebhookSubscription)
                .join(WebhookSubscription)
                .where(due)
                .order_by(col(WebhookDelivery.next_attempt_at), col(WebhookDelivery.id))
                .limit(self.settings.batch_size)
                .with_for_update(skip_locked=True, of=WebhookDelivery)
            )
            for delivery, subscription in session.exec(query).all():
                delivery.lease_until, delivery.claim_token = lease_until, token
                session.add(delivery)
                assert delivery.id is not None
                claims.append(
                    Claim(
                        delivery_id=delivery.id,
                        subscription_id=subscription.id,
                        token=token,
                        url=subscription.url,
                        secret=subscription.secret,
                        body=delivery.body,
                        event_id=delivery.event_id,
                        event_type=delivery.event_type,
                        attempt=delivery.attempts + 1,
                    )
                )
        return claims

    async def _attempt(self, client: httpx.AsyncClient, claim: Claim) -> Outcome:
        status_code, error = None, None
        try:
            target = await asyncio.to_thread(
                check_url, claim.url, self.settings.allowed_private_hosts
            )
            status_code = await self._post(client, claim, target)
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except UnsafeUrl as refused:
            error = str(refused)
        except TimeoutError:
            error = f"no answer within {self.settings.timeout_s} s"
        except httpx.HTTPError as failed:
            error = f"{type(failed).__name__}: {failed}"[:MAX_ERROR_CHARS]
        return Outcome(claim, status_code, error)

    async def _post(self, client: httpx.AsyncClient, claim: Claim, target: Target) -> int:
        """The receiver's status code; its body is not read."""
        body = claim.body.encode()
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Webhook-Signature": signature(claim.secret, body),
            "X-Webhook-Event-Id": public_event_id(claim.event_id),
            "X-Webhook-Event-Type": claim.event_type,
        }
        async with asyncio.timeout(self.settings.timeout_s):
            async with client.stream(
                "POST",
                target.url,
                content=body,
                headers=headers,
                extensions={"sni_hostname": target.server_name},
            ) as reply:
                return reply.status_code

    def _record(self, outcomes: list[Outcome]) -> None:
        """The attempts' outcomes, for the rows this process still holds the lease of."""
        now = datetime.now(UTC)
        with Session(writing(self.engine)) as session, session.begin():
            for outcome in outcomes:
                session.execute(
                    update(WebhookDelivery)
                    .where(col(WebhookDelivery.id) == outcome.claim.delivery_id)
                    .where(col(WebhookDelivery.claim_token) == outcome.claim.token)
                    .values(**self._after(outcome, now))
                )
        for outcome in outcomes:
            claim = outcome.claim
            log_event(
                log,
                "webhook_delivery",
                delivery_id=claim.delivery_id,
                subscription_id=claim.subscription_id,
                event_type=claim.event_type,
                attempt=claim.attempt,
                outcome="delivered" if outcome.error is None else "failed",
                status_code=outcome.status_code,
                error=outcome.error,
            )

    def _after(self, outcome: Outcome, now: datetime) -> dict[str, object]:
        """The row's new values: delivered, failed for good, or due again after a back-off."""
        attempt = outcome.claim.attempt
        values: dict[str, object] = {
            "attempts": attempt,
            "last_status_code": outcome.status_code,
            "last_error": outcome.error,
            "lease_until": None,
            "claim_token": None,
        }
        if outcome.error is None:
            values |= {"status": "delivered", "delivered_at": now}
        elif attempt >= self.settings.max_attempts:
            values["status"] = "failed"
        else:
            delay = self.settings.retry_delay_s(attempt)
            values["next_attempt_at"] = now + timedelta(seconds=delay)
        return values
