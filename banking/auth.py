"""Access and refresh tokens: signed JWTs (PyJWT, HS256), and ending them at logout.

A login opens a token session: its refresh token and every access token made from it carry
the session's id (`sid`), so a logout refuses them all. Revoked sessions are rows of the
database (banking.models.RevokedSession), which every server process shares and which
outlive a restart, and which every authenticated request reads anyway.

`Tokens.user_for_token(token)` is the one check of an access token, for HTTP routes and
WebSocket channels alike.
"""

import os
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import jwt
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine
from sqlmodel import Session, col, delete

from banking.models import RevokedSession

ALGORITHM = "HS256"
MIN_SECRET_CHARS = 32
TokenKind = Literal["access", "refresh"]
WRONG_KIND = {"access": "This is not an access token.", "refresh": "This is not a refresh token."}


class AuthSettings(BaseModel):
    """Values come from config.yaml, which documents each key."""

    model_config = ConfigDict(extra="forbid")

    jwt_secret: str
    jwt_secret_file: str
    access_token_ttl_s: Annotated[int, Field(gt=0)]
    refresh_token_ttl_s: Annotated[int, Field(gt=0)]


class SecretError(Exception):
    """The token signing secret cannot be used; the message says why and where."""


class InvalidToken(Exception):
    """The token is missing, malformed, forged, expired, of the wrong kind or logged out.

    The message says which, in words a client can show.
    """


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str


def signing_secret(settings: AuthSettings) -> str:
    """The configured secret, else this installation's own from `jwt_secret_file`.

    The file is made on first start (random, readable by its owner only) and reused after.
    Two processes starting at once agree: the file appears complete or not at all.
    """
    if settings.jwt_secret:
        if len(settings.jwt_secret) < MIN_SECRET_CHARS:
            raise SecretError(f"auth.jwt_secret must be at least {MIN_SECRET_CHARS} characters")
        return settings.jwt_secret
    path = Path(settings.jwt_secret_file)
    if not path.exists():
        _create_secret_file(path)
    try:
        if path.stat().st_mode & 0o077:
            raise SecretError(f"{path} is readable by others: chmod 600 {path}")
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise SecretError(f"cannot read the token secret {path}: {error}") from error
    if len(secret) < MIN_SECRET_CHARS:
        raise SecretError(f"{path} must hold a secret of at least {MIN_SECRET_CHARS} characters")
    return secret


def _create_secret_file(path: Path) -> None:
    draft = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(secrets.token_urlsafe(48) + "\n")
        os.link(draft, path)  # fails if another process made the file first: theirs is kept
    except FileExistsError:
        pass
    except OSError as error:
        raise SecretError(f"cannot create the token secret {path}: {error}") from error
    finally:
        draft.unlink(missing_ok=True)


class Tokens:
    def __init__(self, engine: Engine, secret: str, settings: AuthSettings) -> None:
        self.engine = engine
        self.secret = secret
        self.settings = settings

    def issue(self, user_id: int) -> TokenPair:
        """A new token session for the user (at login or registration)."""
        session_id = uuid.uuid4().hex
        return TokenPair(
            access_token=self._encode(user_id, session_id, "access"),
            refresh_token=self._encode(user_id, session_id, "refresh"),
        )

    def user_for_token(self, token: str) -> int:
        """The user an access token was issued to; raises InvalidToken for any other token."""
        return int(self._claims(token, "access")["sub"])

    def refresh(self, refresh_token: str) -> str:
        """A new access token in the refresh token's session; raises InvalidToken."""
        claims = self._claims(refresh_token, "refresh")
        return self._encode(int(claims["sub"]), claims["sid"], "access")

    def revoke(self, access_token: str) -> None:
        """End the access token's session: it and its refresh token stop working now."""
        session_id = self._claims(access_token, "access")["sid"]
        now = int(time.time())
        with Session(self.engine) as session:
            # Rows whose tokens have all expired are no longer needed.
            session.exec(delete(RevokedSession).where(col(RevokedSession.expires_at) < now))
            if session.get(RevokedSession, session_id) is None:
                expires_at = now + self.settings.refresh_token_ttl_s
                session.add(RevokedSession(session_id=session_id, expires_at=expires_at))
            session.commit()

    def _encode(self, user_id: int, session_id: str, kind: TokenKind) -> str:
        now = int(time.time())
        ttl_s = (
            self.settings.access_token_ttl_s
            if kind == "access"
            else self.settings.refresh_token_ttl_s
        )
        claims = {
            "sub": str(user_id),
            "sid": session_id,
            "type": kind,
            "iat": now,
            "exp": now + ttl_s,
        }
        return jwt.encode(claims, self.secret, algorithm=ALGORITHM)

    def _claims(self, token: str, kind: TokenKind) -> dict[str, Any]:
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=[ALGORITHM],
                options={"require": ["sub", "sid", "type", "iat", "exp"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise InvalidToken("The token has expired.") from error
        except jwt.InvalidTokenError as error:
            raise InvalidToken("The token is not valid.") from error
        if claims["type"] != kind or not str(claims["sub"]).isdecimal():
            raise InvalidToken(WRONG_KIND[kind])
        with Session(self.engine) as session:
            if session.get(RevokedSession, claims["sid"]) is not None:
                raise InvalidToken("The token was logged out.")
        return claims
