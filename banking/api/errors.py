"""seeds/002's error object, the one error style of every route, and the app's handlers.

    {"status": "error", "error_code": "...", "message": "...", ...details}

A route raises `ApiError` (or returns `error_response`); a `retry_after` detail also
becomes the `Retry-After` header. FastAPI's own 422 keeps its `{"detail": [...]}` shape,
without the `input` of each error; an unreachable database is a 503 with `Retry-After`, on
every route; any other unexpected exception is logged and answered 500.
"""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from banking.db import DATABASE_RETRY_S, DATABASE_UNREACHABLE
from banking.refusals import BANK_UNREACHABLE

log = logging.getLogger("bankbot")


def error_response(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    **details: Any,
) -> JSONResponse:
    """The error object with `details` as further keys (e.g. `details`, `retry_after`)."""
    if "retry_after" in details:
        headers = {**(headers or {}), "Retry-After": str(details["retry_after"])}
    body = {"status": "error", "error_code": code, "message": message, **details}
    return JSONResponse(body, status_code=status, headers=headers)


class ApiError(Exception):
    """A refusal a route raises, answered with the error object."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def not_found(message: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", message)


async def api_error_response(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return error_response(error.status, error.code, error.message, error.headers)


async def invalid_request_response(_request: Request, error: Exception) -> JSONResponse:
    """FastAPI's 422 without the `input` of each error: what was sent (a password typed into
    the wrong field, a weak new password) is never repeated back."""
    assert isinstance(error, RequestValidationError)
    errors = [{k: v for k, v in e.items() if k != "input"} for e in error.errors()]
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


async def database_unreachable_response(request: Request, error: Exception) -> JSONResponse:
    """503 while the database is away: one log line (no traceback: it is not a bug)."""
    cause = getattr(error, "orig", None) or error
    log.warning(
        "database unreachable",
        extra={
            "event": "database_unreachable",
            "fields": {"path": request.url.path, "error": type(cause).__name__},
        },
    )
    return error_response(
        503, "SERVICE_UNAVAILABLE", BANK_UNREACHABLE, retry_after=DATABASE_RETRY_S
    )


def add_error_handlers(app: FastAPI, server_error_headers: dict[str, str]) -> None:
    """The handlers of ApiError, FastAPI's 422, an unreachable database (503) and any other
    exception (a logged 500 with `server_error_headers`: it is answered outside the app's
    middleware)."""

    async def internal_error(request: Request, error: Exception) -> JSONResponse:
        log.error(
            "request failed",
            exc_info=error,
            extra={"event": "error", "fields": {"path": request.url.path}},
        )
        body = {"status": "error", "error_code": "INTERNAL_ERROR", "message": "Server error"}
        return JSONResponse(body, status_code=500, headers=server_error_headers)

    app.add_exception_handler(ApiError, api_error_response)
    app.add_exception_handler(RequestValidationError, invalid_request_response)
    for unreachable in DATABASE_UNREACHABLE:
        app.add_exception_handler(unreachable, database_unreachable_response)
    app.add_exception_handler(Exception, internal_error)
