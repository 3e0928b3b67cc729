"""The account routes of seeds/000: /api/auth/register, login, refresh, me and logout.

Who calls, and with which role, is decided by banking/api/deps.py's dependencies.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, StringConstraints, ValidationInfo, field_validator

from banking.api.deps import (
    CurrentUser,
    CurrentUserId,
    TokenDep,
    TokensDep,
    UsersDep,
    not_logged_in,
)
from banking.api.errors import ApiError
from banking.auth import InvalidToken, Tokens
from banking.passwords import password_problem
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
