"""The account routes of seeds/000 (/api/auth/...), and the dependencies that say who calls.

Every route with user data depends on `Caller`, the user of the request's access token,
and acts only for that user: `acting_for()` refuses (403) a request that names another.
In demo mode (the `demo_mode` setting) a request without a token is served as seeds/001
documents, for the user it names; a token that is sent is checked all the same.

Roles (banking.users): a customer reaches their own data only; agents and admins also
every support ticket; only admins the NLU model routes (`require_role("admin")`).
WebSocket channels await `channel_user()`, which takes the token from `?token=` too.
"""

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, status
from fastapi.requests import HTTPConnection
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm
from pydantic import BaseModel, StringConstraints, ValidationInfo, field_validator
from starlette.concurrency import run_in_threadpool

from banking.auth import InvalidToken, Tokens
from banking.hardening import ApiError
from banking.passwords import password_problem
from banking.users import EmailTaken, Profile, Role, UnknownUser, Users

LOGIN_PATH = "/api/auth/login"
LOG_IN_FIRST = "Log in first: send the access token as 'Authorization: Bearer <token>'."
LOG_IN_FIRST_SOCKET = "Log in first: connect with ?token=<access token>."
# The refusals of every route that needs a token (documented in OpenAPI).
AUTH_RESPONSES: dict[int | str, dict[str, str]] = {
    401: {"description": "No valid access token (seeds/002's error object)"},
    403: {"description": "The token's user may not do this (seeds/002's error object)"},
}


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

    async def __call__(self, connection: HTTPConnection) -> str | None:  # type: ignore[override]
        return bearer_token(connection)


_bearer_scheme = _BearerScheme(tokenUrl=LOGIN_PATH, scheme_name="bearer", auto_error=False)
TokenDep = Annotated[str | None, Depends(_bearer_scheme)]


def _tokens(connection: HTTPConnection) -> Tokens:
    return connection.app.state.tokens


def _users(connection: HTTPConnection) -> Users:
    return connection.app.state.users


TokensDep = Annotated[Tokens, Depends(_tokens)]
UsersDep = Annotated[Users, Depends(_users)]


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


def caller(connection: HTTPConnection, token: TokenDep, tokens: TokensDep) -> int | None:
    """The access token's user; None only in demo mode for a request without a token."""
    if token is None and connection.app.state.demo_mode:
        return None
    return _user_of(tokens, token)


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


async def channel_user(connection: HTTPConnection, named: int | None) -> int | None:
    """Who a WebSocket channel (chat, voice) acts for; raises ApiError (401 or 403), whose
    `message` can be sent to the client before closing.

    The token comes from `?token=` or the Authorization header; `named` is the user id the
    client gave (e.g. `?user_id=`), if any, and must be the token's user. None only in
    demo mode when neither a token nor a user id was given.
    """
    token = bearer_token(connection)
    if token is None:
        if connection.app.state.demo_mode:
            return named
        raise not_logged_in(LOG_IN_FIRST_SOCKET)
    user_id = await run_in_threadpool(_user_of, connection.app.state.tokens, token)
    return acting_for(user_id, named)


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


router = APIRouter(prefix="/api/auth", tags=["auth"])

# Characters an email part may not hold: "@", spaces and control characters (PostgreSQL
# cannot store NUL).
_NOT_IN_EMAIL = r"[^@\s\x00-\x1f\x7f]"
Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_lower=True,
        max_length=254,
        pattern=rf"^{_NOT_IN_EMAIL}+@{_NOT_IN_EMAIL}+\.{_NOT_IN_EMAIL}+$",
    ),
]
Name = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$"
    ),
]


class RegisterRequest(BaseModel):
    email: Email
    password: str
    name: Name

    @field_validator("password")
    @classmethod
    def _meets_the_rules(cls, password: str, info: ValidationInfo) -> str:
        problem = password_problem(password, info.data.get("email", ""))
        if problem is not None:
            raise ValueError(problem)
        return password


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    user_id: int
    name: str
    email: str


class RefreshRequest(BaseModel):
    refresh_token: str


class AccessTokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"


class ProfileResponse(BaseModel):
    user_id: int
    email: str
    name: str
    role: Role


def _signed_in(profile: Profile, tokens: Tokens) -> TokenResponse:
    pair = tokens.issue(profile.user_id)
    return TokenResponse(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        user_id=profile.user_id,
        name=profile.name,
        email=profile.email,
    )


@router.post("/register", status_code=status.HTTP_201_CREATED, responses={409: {}})
def register(body: RegisterRequest, users: UsersDep, tokens: TokensDep) -> TokenResponse:
    """A new customer account (balance 0), already logged in."""
    try:
        profile = users.register(body.email, body.name, body.password)
    except EmailTaken as taken:
        raise ApiError(
            status.HTTP_409_CONFLICT, "EMAIL_ALREADY_REGISTERED", "Email already registered."
        ) from taken
    return _signed_in(profile, tokens)


@router.post("/login", responses={401: {}})
def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], users: UsersDep, tokens: TokensDep
) -> TokenResponse:
    """Form-encoded `username` (the email) and `password`."""
    profile = users.authenticate(form.username, form.password)
    if profile is None:
        raise not_logged_in("Incorrect email or password.")
    return _signed_in(profile, tokens)


@router.post("/refresh", responses={401: {}})
def refresh(body: RefreshRequest, tokens: TokensDep) -> AccessTokenResponse:
    try:
        return AccessTokenResponse(access_token=tokens.refresh(body.refresh_token))
    except InvalidToken as error:
        raise not_logged_in(str(error)) from error


@router.get("/me", responses={401: {}})
def me(user: CurrentUser) -> ProfileResponse:
    return ProfileResponse(user_id=user.user_id, email=user.email, name=user.name, role=user.role)


@router.post("/logout", responses={401: {}})
def logout(token: TokenDep, tokens: TokensDep, _user: CurrentUserId) -> dict[str, str]:
    """Ends this login: its access and refresh tokens are refused from now on."""
    assert token is not None  # CurrentUserId checked it
    tokens.revoke(token)
    return {"message": "Logged out successfully"}
