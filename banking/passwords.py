"""bcrypt password hashing and the rules a new password must meet.

Plain passwords never leave this module's functions: they are hashed, compared or
checked against the rules, never stored, logged or repeated.
"""

import functools
import secrets

import bcrypt

# bcrypt reads at most 72 bytes; longer inputs are refused instead of silently cut.
MAX_PASSWORD_BYTES = 72
MIN_PASSWORD_CHARS = 8
# ~0.25 s per hash or check on this machine: slow enough to make guessing expensive.
BCRYPT_ROUNDS = 12


def hash_password(password: str) -> str:
    encoded = _encoded(password)
    if encoded is None or len(encoded) > MAX_PASSWORD_BYTES:
        raise ValueError(f"password not text or longer than {MAX_PASSWORD_BYTES} bytes")
    return bcrypt.hashpw(encoded, bcrypt.gensalt(BCRYPT_ROUNDS)).decode()


def verify_password(password: str, password_hash: str) -> bool:
    encoded = _encoded(password)
    if encoded is None or len(encoded) > MAX_PASSWORD_BYTES:
        return False
    return bcrypt.checkpw(encoded, password_hash.encode())


def _encoded(password: str) -> bytes | None:
    """UTF-8, or None for a string that is not text (a lone surrogate from JSON's \\ud800)."""
    try:
        return password.encode()
    except UnicodeEncodeError:
        return None


def burn_password_check(password: str) -> None:
    """Spend what checking `password` against a real hash costs, for a user who does not
    exist: a login then takes as long whether or not the email is registered."""
    verify_password(password, _unmatchable_hash())


@functools.cache
def _unmatchable_hash() -> str:
    """A hash made like every other (same rounds) of a random secret nobody knows."""
    return hash_password(secrets.token_urlsafe(32))


def warm_up() -> None:
    """Make the unmatchable hash now (once per process), not during the first login."""
    _unmatchable_hash()


def password_problem(password: str, email: str) -> str | None:
    """What is wrong with a new password, in words, or None when it meets the rules.

    The rules: 8 characters to 72 bytes (bcrypt's limit), at least one letter and one
    digit or symbol, and not containing the email's name part.
    """
    encoded = _encoded(password)
    if encoded is None:
        return "Passwords must be text."
    if len(password) < MIN_PASSWORD_CHARS:
        return f"Passwords need at least {MIN_PASSWORD_CHARS} characters."
    if len(encoded) > MAX_PASSWORD_BYTES:
        return f"Passwords can be at most {MAX_PASSWORD_BYTES} bytes long."
    if password.strip() != password:
        return "Passwords cannot start or end with a space."
    if not any(c.isalpha() for c in password) or all(c.isalpha() for c in password):
        return "Passwords need at least one letter and one digit or symbol."
    name = email.split("@")[0].lower()
    if len(name) >= 3 and name in password.lower():
        return "Passwords cannot contain your email address."
    return None
