"""What one token-endpoint request came to, for its audit event.

The toolkit's views only see the response; who the client and the account
were, and why a request was refused, are known inside the validator's hooks.
The view opens a record for the request (`recording`), the validator notes
facts into it (`note`), and the view writes the one `api.token.*` event from
it afterwards. A context variable: each request, thread or task, has its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class Outcome:
    request: object  # the Django request
    client: object = None
    user: object = None
    label: str = ""  # the account named (password grant), when no user was found
    reason: str = ""  # why it was refused, in our words
    password_ok: bool = False  # the password was right (the failure count is taken back)
    scope: str = ""
    family_revoked: bool = False


_current: ContextVar[Outcome | None] = ContextVar("api_token_outcome", default=None)


@contextmanager
def recording(request) -> Iterator[Outcome]:
    outcome = Outcome(request=request)
    token = _current.set(outcome)
    try:
        yield outcome
    finally:
        _current.reset(token)


def current() -> Outcome | None:
    return _current.get()


def note(**facts) -> None:
    """Record facts about the current request (nothing outside one)."""
    outcome = _current.get()
    if outcome is not None:
        for name, value in facts.items():
            setattr(outcome, name, value)
