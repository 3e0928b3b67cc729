"""Whose NLU call comes first: a user's turn before a test call (POST /test-nlu).

The LLM stage runs one call at a time. A test call is asked in `background()`: it takes the
model only when no turn holds or wants it, and gives it up at the next token when a turn
comes, so a flood of test calls never makes a real turn skip the LLM.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_BACKGROUND: ContextVar[bool] = ContextVar("nlu_background", default=False)


@contextmanager
def background() -> Iterator[None]:
    """NLU calls made inside yield to users' turns."""
    token = _BACKGROUND.set(True)
    try:
        yield
    finally:
        _BACKGROUND.reset(token)


def in_background() -> bool:
    return _BACKGROUND.get()
