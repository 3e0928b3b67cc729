"""The HTTP plumbing every reply passes through: security headers, a request body limit,
CORS from config, and tokens kept out of the server's log lines; and `serve()`.

The headers are the ones seeds/001 recommends for production, plus `Cache-Control:
no-store` (replies carry balances and transactions) and `Referrer-Policy: no-referrer`.
The interactive API pages (/docs, /redoc) are served from files on this machine
(banking/api/docs.py): their Content-Security-Policy, like every reply's, allows scripts
and everything fetched from the page's own origin only, with additions that fetch nothing
(PAGE_CSP: data: images, ReDoc's inline styles and blob: worker).
"""

import logging
import re
import socket
from typing import Annotated

import uvicorn
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from banking.api.docs import add_api_docs
from banking.api.errors import add_error_handlers, error_response
from banking.api.ratelimit import add_rate_limiting
from banking.config import ConfigError
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
# The API pages' policies: still nothing from another origin. Swagger UI's icons are data:
# URLs; ReDoc styles itself with <style> elements it writes (its standalone build has no
# nonce hook) and searches in a blob: worker.
PAGE_CSP = {
    "/docs": "default-src 'self'; img-src 'self' data:",
    "/redoc": (
        "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "worker-src 'self' blob:"
    ),
}


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
    """Add the middleware, the request limit's 429 and headers, the error handlers, and the
    offline API pages (/docs, /redoc).

    The last middleware added runs first, so the headers reach every reply; a 500 is
    answered outside the middleware, so its handler adds them itself.
    """
    add_error_handlers(app, server_error_headers=SECURITY_HEADERS)
    add_api_docs(app)
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
        if scope["path"] in PAGE_CSP:
            extra["Content-Security-Policy"] = PAGE_CSP[scope["path"]]

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
# Seconds a new worker of `--workers N` may take to import the app before it answers the
# parent's health pings (uvicorn kills it after that and starts another).
WORKER_START_TIMEOUT_S = 120


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


class PortInUse(ConfigError):
    """The address to serve on is taken: the one-line message says what to do (a
    ConfigError: the server stops with it)."""


def check_port_free(host: str, port: int) -> None:
    """Raise PortInUse now, before the models load, if `host:port` cannot be listened on.

    Bound as uvicorn binds (SO_REUSEADDR), so a port left in TIME_WAIT counts as free.
    """
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise PortInUse(
                f"cannot listen on {host}:{port} ({error.strerror}); stop what uses it "
                "(another bankbot?) or pick another port: --port N or BANKBOT_SERVER__PORT"
            ) from error


def serve(
    app: ASGIApp | str,
    settings: ServingSettings,
    host: str | None,
    port: int | None,
    workers: int = 1,
) -> None:
    """Serve with uvicorn (at `host` and `port`, else the settings'), tokens kept out of its
    log lines (a WebSocket's ?token=). Several workers: `app` is the import string of a
    factory each worker process calls; they share the one listening socket."""
    redact_tokens_in("uvicorn.access", "uvicorn.error")
    uvicorn.run(
        app,
        factory=isinstance(app, str),
        workers=workers,
        # A worker answers the parent's health pings only once it has imported the app's
        # modules (the speech and LLM libraries: seconds, longer on a busy CPU).
        timeout_worker_healthcheck=WORKER_START_TIMEOUT_S,
        host=host or settings.server.host,
        port=port or settings.server.port,
        log_level=settings.log_level,
        ws_max_size=settings.security.max_ws_frame_bytes,
        log_config=logging_config(settings.log_level),
    )
