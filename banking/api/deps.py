"""Every dependency of the HTTP routes: the bank's services (and the observatory the admin
routes report on), who calls and with which role, the request limit, the Idempotency-Key,
and what WebSocket channels check on each turn.

Every route with user data depends on `Caller` (or `CurrentUser`), the user of the
request's access token, and acts only for that user: `acting_for()` refuses (403) a
request that names another. In demo mode (the `demo_mode` setting) a request without a
token is served as seeds/001 documents, for the user it names; a token that is sent is
checked all the same.

Roles (banking.users): a customer reaches their own data only; agents and admins also
every support ticket; only admins the NLU model routes (`require_role("admin")`).
WebSocket channels await `channel_user()`, which takes the token from `?token=` too.

A limited route takes its user (or the body naming it) through `rate_limited(...)`, which
counts the request against that user once the caller is checked.
"""

import re
from collections.abc import Callable
from typing import Annotated, Any, Protocol
from zoneinfo import ZoneInfo

from fastapi import Depends, Header, Path, status
from fastapi.requests import HTTPConnection
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordBearer
from pydantic import Field, TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from banking.api.errors import ApiError, error_response
from banking.api.observatory import Observatory
from banking.api.ratelimit import (
    RateLimitExceeded,
    limit_message,
    spend_address_request,
    spend_request,
)
from banking.auth import InvalidToken, Tokens
from banking.bank import Bank
from banking.db import DATABASE_UNREACHABLE
from banking.idempotency import KeyInProgress, KeyReused, fingerprint, transfer_id_for
from banking.refusals import BANK_UNREACHABLE, USER_NOT_FOUND
from banking.statements import Statements
from banking.users import Profile, Role, UnknownUser, Users

LOGIN_PATH = "/api/auth/login"
LOG_IN_FIRST = "Log in first: send the access token as 'Authorization: Bearer <token>'."
LOG_IN_FIRST_SOCKET = "Log in first: connect with ?token=<access token>."
# The refusals of every route that needs a token (documented in OpenAPI).
AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid access token (seeds/002's error object)"},
    403: {"description": "The token's user may not do this (seeds/002's error object)"},
}
# The answers every user-data route may give besides its own (documented in OpenAPI).
GUARDED_RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {"description": "A request with this Idempotency-Key is still running"},
    422: {"description": "Invalid parameters, or an Idempotency-Key used for another request"},
    429: {"description": "Too many requests (seeds/002's error body, Retry-After)"},
}
MAX_PASSWORD_CHARS = 128
MAX_LIMIT = 100  # the most rows one page of a list shows
# The largest key a database integer column holds; larger ids are refused as invalid.
MAX_ID = 2**63 - 1
UserId = Annotated[int, Field(strict=True, ge=1, le=MAX_ID)]
AccountId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _bank(connection: HTTPConnection) -> Bank:
    """The bank's services, for HTTP and WebSocket routes alike (server.py puts them there)."""
    bank: Bank = connection.app.state.services.bank
    return bank


BankDep = Annotated[Bank, Depends(_bank)]


def _observatory(connection: HTTPConnection) -> Observatory:
    """What the admin routes report on (banking/api/observatory.py; server.py puts the
    assistant's implementation there)."""
    observatory: Observatory = connection.app.state.services.observatory
    return observatory


ObservatoryDep = Annotated[Observatory, Depends(_observatory)]


def _tokens(bank: BankDep) -> Tokens:
    return bank.tokens


def _users(bank: BankDep) -> Users:
    return bank.users


def _statements(bank: BankDep) -> Statements:
    return bank.statements


def _zone(bank: BankDep) -> ZoneInfo:
    return bank.zone


TokensDep = Annotated[Tokens, Depends(_tokens)]
UsersDep = Annotated[Users, Depends(_users)]
StatementsDep = Annotated[Statements, Depends(_statements)]
ZoneDep = Annotated[ZoneInfo, Depends(_zone)]


# Who calls.


def not_logged_in(message: str = LOG_IN_FIRST) -> ApiError:
    """401, naming the scheme to use (RFC 6750)."""
    return ApiError(
        status.HTTP_401_UNAUTHORIZED, "UNAUTHORIZED", message, {"WWW-Authenticate": "Bearer"}
    )


def forbidden(message: str) -> ApiError:
    return ApiError(status.HTTP_403_FORBIDDEN, "FORBIDDEN", message)


def bearer_token(connection: HTTPConnection) -> str | None:
    """The token of `Authorization: Bearer <token>`, or on a WebSocket also of `?token=`
    (browsers cannot set headers on a WebSocket). None when none is sent; an Authorization
    header of another form is refused rather than ignored."""
    header = connection.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise not_logged_in("Send the access token as 'Authorization: Bearer <token>'.")
        return token.strip()
    if connection.scope["type"] == "websocket":
        return connection.query_params.get("token")
    return None


class _BearerScheme(OAuth2PasswordBearer):
    """bearer_token() as a dependency; being an OAuth2 scheme, it gives /docs its login."""

    async def __call__(self, connection: HTTPConnection) -> str | None:
        return bearer_token(connection)


_bearer_scheme = _BearerScheme(tokenUrl=LOGIN_PATH, scheme_name="bearer", auto_error=False)
TokenDep = Annotated[str | None, Depends(_bearer_scheme)]


def _user_of(tokens: Tokens, token: str | None) -> int:
    if token is None:
        raise not_logged_in()
    try:
        return tokens.user_for_token(token)
    except InvalidToken as error:
        raise not_logged_in(str(error)) from error


def current_user_id(token: TokenDep, tokens: TokensDep) -> int:
    """The access token's user; a valid token is needed even in demo mode."""
    return _user_of(tokens, token)


CurrentUserId = Annotated[int, Depends(current_user_id)]


def current_user(user_id: CurrentUserId, users: UsersDep) -> Profile:
    try:
        return users.profile(user_id)
    except UnknownUser as gone:  # a token from another database with the same secret
        raise not_logged_in("The token's user does not exist.") from gone


CurrentUser = Annotated[Profile, Depends(current_user)]


def caller(token: TokenDep, bank: BankDep) -> int | None:
    """The access token's user; None only in demo mode for a request without a token."""
    if token is None and bank.demo_mode:
        return None
    return _user_of(bank.tokens, token)


Caller = Annotated[int | None, Depends(caller)]


def acting_for(caller: int | None, named: int | None) -> int | None:
    """The user a request acts for: the caller, whom a `user_id` in the request (`named`)
    must match (403 otherwise). In demo mode without a token: the named user, if any."""
    if caller is None:
        return named
    if named is not None and named != caller:
        raise forbidden("This token is not for that user.")
    return caller


def acting_user(caller: int | None, named: int | None) -> int:
    """acting_for() where `user_id` may be left out: then the token names the user, and a
    request with neither (possible in demo mode only) is refused (422)."""
    user_id = acting_for(caller, named)
    if user_id is None:
        raise ApiError(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "INVALID_REQUEST", "Send user_id or a token."
        )
    return user_id


def role_of(caller: int | None, users: Users) -> Role | None:
    """The caller's role; None in demo mode without a token, where nothing is checked."""
    return None if caller is None else users.role(caller)


def require_role(*roles: Role) -> Callable[[int | None, Users], None]:
    """A dependency refusing (403) callers without one of `roles` (demo mode: see above)."""

    def check(caller: Caller, users: UsersDep) -> None:
        role = role_of(caller, users)
        if role is not None and role not in roles:
            raise forbidden(f"This needs the {' or '.join(roles)} role.")

    return check


# The request limit.


def rate_limited(found: Callable[..., Any], user_of: Callable[[Any], int] | None = None) -> Any:
    """The dependency `found` (the request's user id, or what names the user: `user_of`
    gives the id), counting the request against that user: over the limit it is
    answered 429 (banking/api/ratelimit.py). A limited route takes its user, or the body
    that names it, through this: `user: Annotated[int, rate_limited(current_user_id)]`.

    Counted once `found` has checked the caller, so a refused request (401, 403, 404) or
    an invalid one costs nothing. Not a router-wide dependency: the route must not declare
    `found`'s parameters a second time, or FastAPI reports each invalid one twice.
    """

    def count(
        connection: HTTPConnection, bank: BankDep, value: Annotated[Any, Depends(found)]
    ) -> Any:
        spend_request(connection, bank.limits, value if user_of is None else user_of(value))
        return value

    return Depends(count)


def _profile_id(user: Profile) -> int:
    return user.user_id


# The token's user, each request counted against them.
LimitedUserId = Annotated[int, rate_limited(current_user_id)]
LimitedUser = Annotated[Profile, rate_limited(current_user, _profile_id)]


def _count_address(connection: HTTPConnection, bank: BankDep) -> None:
    spend_address_request(connection, bank.limits)


# A route that acts for no user (POST /test-nlu) counts each request against the client's
# address instead, under the same limit.
AddressLimited = Depends(_count_address)


# Idempotency-Key (banking/idempotency.py keeps the claims).

IDEMPOTENCY_HEADER = "Idempotency-Key"
KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII, as the IETF draft suggests

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=IDEMPOTENCY_HEADER,
        description="Makes a retry safe: the same key with the same request returns the "
        "first answer and moves no money again; with another request it is refused (422).",
    ),
]


def idempotent(
    bank: Bank,
    key: str | None,
    user_id: int,
    channel: str,
    payload: dict[str, Any],
    run: Callable[[str | None], JSONResponse],
) -> JSONResponse:
    """`run(transfer_id)` once per Idempotency-Key; without a key, simply `run(None)`.

    `payload` is the request as the channel read it, without the password. A retry gets
    the first answer, marked `Idempotent-Replayed: true`.
    """
    if key is None:
        return run(None)
    if not KEY_PATTERN.fullmatch(key):
        return error_response(
            422,
            "INVALID_REQUEST",
            f"{IDEMPOTENCY_HEADER} must be 1 to 255 visible ASCII characters.",
            details={"field": IDEMPOTENCY_HEADER, "reason": "invalid_format"},
        )
    store = bank.idempotency
    try:
        replay = store.claim(user_id, key, fingerprint(channel, payload))
    except KeyReused:
        return error_response(
            422,
            "IDEMPOTENCY_KEY_REUSED",
            f"This {IDEMPOTENCY_HEADER} was already used with a different request. "
            "Use a new key for a new request.",
            details={"field": IDEMPOTENCY_HEADER, "reason": "key_reused"},
        )
    except KeyInProgress as busy:
        return error_response(
            409,
            "IDEMPOTENCY_KEY_IN_USE",
            f"A request with this {IDEMPOTENCY_HEADER} is still being processed. Retry later.",
            retry_after=busy.retry_after_s,
        )
    if replay is not None:
        return JSONResponse(
            replay.body, status_code=replay.status_code, headers={"Idempotent-Replayed": "true"}
        )
    try:
        response = run(transfer_id_for(user_id, key))
    except BaseException:
        store.release(user_id, key)
        raise
    store.finish(user_id, key, response.status_code, bytes(response.body))
    return response


# WebSocket channels (chat, voice, telephony): checked at connect and before each turn.


class KnowsUsers(Protocol):
    """Who can tell whether a user exists (dialogue's Assistant)."""

    def knows(self, user_id: int) -> bool: ...


_USER_ID = TypeAdapter(UserId)
CONNECT_HINT = "Connect with ?user_id=<your user id>."


async def channel_user(connection: HTTPConnection, named: int | None) -> int | None:
    """Who a WebSocket channel (chat, voice) acts for; raises ApiError (401 or 403), whose
    `message` can be sent to the client before closing.

    The token comes from `?token=` or the Authorization header; `named` is the user id the
    client gave (e.g. `?user_id=`), if any, and must be the token's user. None only in
    demo mode when neither a token nor a user id was given.
    """
    bank = _bank(connection)
    token = bearer_token(connection)
    if token is None:
        if bank.demo_mode:
            return named
        raise not_logged_in(LOG_IN_FIRST_SOCKET)
    user_id = await run_in_threadpool(_user_of, bank.tokens, token)
    return acting_for(user_id, named)


async def known_user(connection: HTTPConnection, users: KnowsUsers) -> int | str:
    """The token's user (whom a `?user_id=` must name) or, in demo mode without a token,
    the `?user_id=`, if that user exists; else why not, in words.

    Every WebSocket channel (chat, voice) identifies its user this way.
    """
    named = connection.query_params.get("user_id")
    try:
        user_id = await channel_user(
            connection, None if named is None else _USER_ID.validate_json(named)
        )
        if user_id is None:
            return CONNECT_HINT
        if not await run_in_threadpool(users.knows, user_id):
            return USER_NOT_FOUND
    except ValidationError:
        return CONNECT_HINT
    except ApiError as refusal:
        return refusal.message
    except DATABASE_UNREACHABLE:  # HTTP's 503: the socket closes with "try again later"
        return BANK_UNREACHABLE
    return user_id


def close_code_for(refusal: str) -> int:
    """The close code of a socket refused with `refusal`: 1013 (try again later) while the
    bank cannot be reached, else 1008 (policy violation)."""
    if refusal == BANK_UNREACHABLE:
        return status.WS_1013_TRY_AGAIN_LATER
    return status.WS_1008_POLICY_VIOLATION


async def token_ended(connection: HTTPConnection, user_id: int) -> str | None:
    """Why the socket's token stopped working since it connected (logged out, expired), or
    None: every channel checks it again before each turn, so a logout also ends sockets."""
    try:
        await channel_user(connection, user_id)
    except ApiError as refusal:
        return refusal.message
    return None


async def over_limit(connection: HTTPConnection, user_id: int) -> str | None:
    """Why this turn is over the user's request limit, or None: on a socket each message
    (each spoken turn) counts, not the connection."""
    limits = _bank(connection).limits
    try:
        await run_in_threadpool(spend_request, connection, limits, user_id)
    except RateLimitExceeded as over:
        return limit_message(over.quota, over.window_s)
    return None
