"""The HTTP plumbing every reply passes through: security headers, a request body limit,
CORS from config, and tokens kept out of the server's log lines; and `serve()`.

The headers are the ones seeds/001 recommends for production, plus `Cache-Control:
no-store` (replies carry balances and transactions) and `Referrer-Policy: no-referrer`.
The interactive API pages (/docs, /redoc) load Swagger UI and ReDoc from a CDN, so their
Content-Security-Policy allows that CDN and inline scripts; every other reply allows only
its own origin.
"""

import logging
import re
from typing import Annotated

import uvicorn
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from banking.api.errors import add_error_handlers, error_response
from banking.api.ratelimit import add_rate_limiting
from banking.logs import logging_config

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Strict-Transport-Security": "max-age=31536000",
    "X-XSS-Protection": "1; mode=block",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}
DOCS_PATHS = ("/docs", "/redoc")
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "img-src 'self' data: https://fastapi.tiangolo.com; worker-src 'self' blob:"
)


class ServerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str
    port: int


class SecuritySettings(BaseModel):
    """Values come from config.yaml, which documents each key."""

    model_config = ConfigDict(extra="forbid")

    cors_origins: list[str]
    max_body_bytes: Annotated[int, Field(gt=0)]
    max_ws_message_bytes: Annotated[int, Field(gt=0)]
    # The most the server reads of one WebSocket message; past it the socket is closed
    # (1009). Well above the channels' limits, so that a larger message (a 10 MB audio
    # frame) gets their polite error and the socket stays open.
    max_ws_frame_bytes: Annotated[int, Field(gt=0)]


class ServingSettings(BaseModel):
    """The sections of config.yaml on how the app is served: where it listens, its log
    level, and the limits above."""

    model_config = ConfigDict(extra="forbid")

    log_level: str
    server: ServerSettings
    security: SecuritySettings


def harden(app: FastAPI, settings: SecuritySettings) -> None:
    """Add the middleware, the request limit's 429 and headers, and the error handlers.

    The last middleware added runs first, so the headers reach every reply; a 500 is
    answered outside the middleware, so its handler adds them itself.
    """
    add_error_handlers(app, server_error_headers=SECURITY_HEADERS)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    add_rate_limiting(app)


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every HTTP reply that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = dict(SECURITY_HEADERS)
        if scope["path"].startswith(DOCS_PATHS):
            extra["Content-Security-Policy"] = DOCS_CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *(
                        (name.lower().encode(), value.encode())
                        for name, value in extra.items()
                        if name.lower().encode() not in present
                    ),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """Refuses a request body over `max_bytes` with 413 before any route reads it.

    The body is read here (up to the limit) whether or not a Content-Length was sent, so a
    chunked upload cannot slip past; the route then reads it from memory.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "PAYLOAD_TOO_LARGE", f"Request bodies are limited to {self.max_bytes} bytes."
        )
        await response(scope, receive, send)


# `token=<anything up to &, space or quote>` in a logged URL, e.g. a WebSocket's ?token=.
TOKEN_IN_URL = re.compile(r"(token=)[^&\s\"']+")


class RedactTokens(logging.Filter):
    """Masks tokens in log records (uvicorn logs each request's path with its query),
    keeping the record's message and arguments apart for structured formatters."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = _redacted(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                _redacted(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def _redacted(text: str) -> str:
    return TOKEN_IN_URL.sub(r"\1***", text)


def redact_tokens_in(*logger_names: str) -> None:
    for name in logger_names:
        logging.getLogger(name).addFilter(RedactTokens())


def serve(app: ASGIApp, settings: ServingSettings, host: str | None, port: int | None) -> None:
    """Serve with uvicorn (at `host` and `port`, else the settings'), tokens kept out of its
    log lines (a WebSocket's ?token=)."""
    redact_tokens_in("uvicorn.access", "uvicorn.error")
    uvicorn.run(
        app,
        host=host or settings.server.host,
        port=port or settings.server.port,
        log_level=settings.log_level,
        ws_max_size=settings.security.max_ws_frame_bytes,
        log_config=logging_config(settings.log_level),
    )
