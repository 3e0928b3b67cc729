"""The request limit on HTTP and WebSocket channels: counting, 429 and X-RateLimit-* headers.

A limited route takes its user through `rate_limited(...)` (banking/api/deps.py), which
counts the request with `spend_request` once it knows whose data the request touches.
Over the limit it raises RateLimitExceeded, which `too_many_requests` answers with
seeds/002's 429 body and `Retry-After`; otherwise the quota is kept on the request and
`RateLimitHeaders` adds `X-RateLimit-Limit/Remaining/Reset` to the response.
"""

from fastapi import FastAPI, Request
from fastapi.requests import HTTPConnection
from fastapi.responses import JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from banking.api.errors import error_response
from banking.limits import Limits, Quota

STATE_KEY = "rate_limit"


class RateLimitExceeded(Exception):
    def __init__(self, quota: Quota, window_s: int) -> None:
        super().__init__(f"limit of {quota.limit} requests reached")
        self.quota = quota
        self.window_s = window_s


def spend_request(connection: HTTPConnection, limits: Limits, user_id: int) -> Quota | None:
    """Count one request of the user. None when the counters are unavailable (not limited)."""
    return _spend(connection, limits, limits.request(user_id))


def spend_address_request(connection: HTTPConnection, limits: Limits) -> Quota | None:
    """Count one request of the client's address (a route that acts for no user)."""
    address = connection.client.host if connection.client is not None else "unknown"
    return _spend(connection, limits, limits.address_request(address))


def _spend(connection: HTTPConnection, limits: Limits, quota: Quota | None) -> Quota | None:
    if quota is None:
        return None
    connection.scope.setdefault("state", {})[STATE_KEY] = quota
    if quota.exceeded:
        raise RateLimitExceeded(quota, limits.settings.requests_window_s)
    return quota


def limit_message(quota: Quota, window_s: int) -> str:
    return (
        f"Too many requests: the limit is {quota.limit} requests per "
        f"{'minute' if window_s == 60 else f'{window_s} seconds'}. "
        f"Please retry in {quota.retry_after_s()} seconds."
    )


async def too_many_requests(_request: Request, error: Exception) -> JSONResponse:
    """seeds/002's 429 body."""
    assert isinstance(error, RateLimitExceeded)
    quota = error.quota
    return error_response(
        429,
        "RATE_LIMIT_EXCEEDED",
        limit_message(quota, error.window_s),
        headers=quota.headers(),
        retry_after=quota.retry_after_s(),
        reset_time=quota.reset_time(),
    )


class RateLimitHeaders:
    """Adds the X-RateLimit-* headers to every response of a request that was counted."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            quota = scope.get("state", {}).get(STATE_KEY)
            if message["type"] == "http.response.start" and quota is not None:
                MutableHeaders(scope=message).update(quota.headers())
            await send(message)

        await self.app(scope, receive, send_with_headers)


def add_rate_limiting(app: FastAPI) -> None:
    """The 429 answer and the X-RateLimit-* headers (add after the security middleware)."""
    app.add_middleware(RateLimitHeaders)
    app.add_exception_handler(RateLimitExceeded, too_many_requests)
