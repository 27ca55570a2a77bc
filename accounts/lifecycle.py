"""Moments in an account's life that other apps must act on at once.

Apps above accounts (the API's OAuth tokens) hold credentials of their own
for an account. When the account is blocked or deleted, or its password is
replaced, those credentials must die in the same write, or a token would
outlive the browser sessions that `accounts.services` ends. accounts must
not import those apps, so they register a callable here at start-up (their
AppConfig.ready) and the services call the moments explicitly, inside their
transaction: a rolled-back block revokes nothing.

A hook receives the user (still in the database, also for a deletion) and
keyword facts; it must not raise for an account it holds nothing for.
"""

from __future__ import annotations

ACCOUNT_DISABLED = "account_disabled"  # blocked or about to be deleted
CREDENTIALS_REPLACED = "credentials_replaced"  # password reset or changed

_hooks: dict[str, list] = {ACCOUNT_DISABLED: [], CREDENTIALS_REPLACED: []}


def register(moment: str, hook) -> None:
    """`hook(user, *, reason, request)` is called at `moment` (once per hook)."""
    if hook not in _hooks[moment]:
        _hooks[moment].append(hook)


def account_disabled(user, *, reason: str, request=None) -> None:
    """The account is blocked (`reason="blocked"`) or deleted (`"deleted"`)."""
    for hook in _hooks[ACCOUNT_DISABLED]:
        hook(user, reason=reason, request=request)


def credentials_replaced(user, *, reason: str, request=None) -> None:
    """The account's password was reset by link or changed by its owner."""
    for hook in _hooks[CREDENTIALS_REPLACED]:
        hook(user, reason=reason, request=request)
