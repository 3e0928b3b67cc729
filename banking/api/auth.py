"""The account routes of seeds/000: /api/auth/register, login, refresh, me and logout.

Who calls, and with which role, is decided by banking/api/deps.py's dependencies. Logins
and registrations are limited per client address and logins locked per email
(banking/logins.py): 429 and 423 with Retry-After, in seeds/002's error object.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, StringConstraints, ValidationInfo, field_validator

from banking.api.deps import (
    BankDep,
    CurrentUser,
    CurrentUserId,
    TokenDep,
    TokensDep,
    not_logged_in,
)
from banking.api.errors import ApiError, error_response
from banking.auth import InvalidToken, Tokens
from banking.logins import LoginLocked, TooManyAttempts
from banking.passwords import password_problem
from banking.store import StoreUnavailable
from banking.users import EmailTaken, Profile, Role

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


# When to retry while the key-value store, which keeps the login counters, is down.
STORE_RETRY_S = 5
LIMITED: dict[int | str, dict[str, Any]] = {429: {}, 503: {}}


def _client_address(request: Request) -> str:
    """As uvicorn reports it (a proxy's X-Forwarded-For only from forwarded_allow_ips)."""
    return request.client.host if request.client else "unknown"


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenResponse,
    responses={409: {}, **LIMITED},
)
def register(
    body: RegisterRequest, request: Request, bank: BankDep, tokens: TokensDep
) -> TokenResponse | JSONResponse:
    """A new customer account (balance 0), already logged in."""
    try:
        profile = bank.logins.register(
            body.email, body.name, body.password, _client_address(request)
        )
    except EmailTaken as taken:
        raise ApiError(
            status.HTTP_409_CONFLICT, "EMAIL_ALREADY_REGISTERED", "Email already registered."
        ) from taken
    except (TooManyAttempts, StoreUnavailable) as refused:
        return _refused(refused)
    return _signed_in(profile, tokens)


@router.post("/login", response_model=TokenResponse, responses={401: {}, 423: {}, **LIMITED})
def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    bank: BankDep,
    tokens: TokensDep,
) -> TokenResponse | JSONResponse:
    """Form-encoded `username` (the email) and `password`."""
    try:
        profile = bank.logins.log_in(form.username, form.password, _client_address(request))
    except (TooManyAttempts, LoginLocked, StoreUnavailable) as refused:
        return _refused(refused)
    if profile is None:
        raise not_logged_in("Incorrect email or password.")
    return _signed_in(profile, tokens)


def _refused(refused: Exception) -> JSONResponse:
    """429 for an address over its limit, 423 for a locked login, 503 without counters."""
    if isinstance(refused, TooManyAttempts):
        quota = refused.quota
        return error_response(
            429,
            "RATE_LIMIT_EXCEEDED",
            f"Too many {refused.what} attempts from your address: the limit is "
            f"{quota.limit} per {_period(refused.window_s)}. "
            f"Please retry in {quota.retry_after_s()} seconds.",
            retry_after=quota.retry_after_s(),
            reset_time=quota.reset_time(),
        )
    if isinstance(refused, LoginLocked):
        return error_response(
            423,
            "ACCOUNT_LOCKED",
            f"Too many wrong passwords: logins to this account are locked for "
            f"{_period(refused.lock_s)}. Please retry in {refused.retry_after_s} seconds.",
            retry_after=refused.retry_after_s,
        )
    return error_response(
        503,
        "SERVICE_UNAVAILABLE",
        "Logging in is unavailable for a moment. Please retry in a few seconds.",
        retry_after=STORE_RETRY_S,
    )


def _period(seconds: int) -> str:
    if seconds % 3600 == 0:
        return "hour" if seconds == 3600 else f"{seconds // 3600} hours"
    return f"{seconds // 60} minutes" if seconds % 60 == 0 else f"{seconds} seconds"


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
