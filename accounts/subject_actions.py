"""What an actor may do to one account, asked before the page offers it.

The user page shows a button only when the service behind it would accept
the click. So each answer runs the SAME checks the service runs (the
delegation Writer's `require`, `outranks`, `not_self`, and the services'
guard functions) against the actor's current permissions, catching the
refusal instead of letting it escape: nothing is written, nothing audited.
A POST sent anyway still meets the service, which decides again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from accounts.audit import Actor
from accounts.delegation import Writer, held_by
from accounts.errors import AccountError
from accounts.models import User
from accounts.services.mfa import mfa_reset_guard
from accounts.services.users import delete_guard, status_guard

ACTIONS = (
    "edit",
    "groups",
    "block",
    "unblock",
    "delete",
    "reset_password",
    "reset_mfa",
    "unlink",
)


@dataclass(frozen=True)
class SubjectActions:
    """`allowed`: the actions the services would accept; `refused`: the
    others, each with the service's own message (why it is not offered)."""

    allowed: frozenset[str]
    refused: dict[str, str] = field(default_factory=dict)

    def __getattr__(self, name: str) -> bool:
        if name in ACTIONS:
            return name in self.allowed
        raise AttributeError(name)

    @property
    def any_header_action(self) -> bool:
        return bool(self.allowed & {"block", "unblock", "delete", "reset_password", "reset_mfa"})


def _edit(writer: Writer, user: User) -> None:
    # accounts.services.user_update: a change of fields or groups.
    writer.outranks(user)
    writer.require("backoffice:users:edit", "change names, email or language")


def _unlink(writer: Writer, user: User) -> None:
    # sso.services.identity_unlink
    writer.require("backoffice:users:edit", "unlink identities")
    writer.outranks(user)


def _reset_password(writer: Writer, user: User) -> None:
    # accounts.services.user_send_password_link (invitation=False)
    writer.require("backoffice:users:reset-password", "send password resets")
    writer.outranks(user)
    if not user.is_active:
        raise AccountError(
            _("%(email)s is blocked: unblock the account first.") % {"email": user.email}
        )
    if user.is_service:
        raise AccountError(
            _("%(email)s is a service account: it has no password, its API client's secret.")
            % {"email": user.email}
        )


def _reset_mfa(writer: Writer, user: User) -> None:
    mfa_reset_guard(writer, user=user)


def _block(writer: Writer, user: User) -> None:
    status_guard(writer, user=user, active=False)
    if not user.is_active:
        raise AccountError(_("The account is blocked already."))


def _unblock(writer: Writer, user: User) -> None:
    status_guard(writer, user=user, active=True)
    if user.is_active:
        raise AccountError(_("The account is not blocked."))


CHECKS = {
    "edit": _edit,
    "groups": _edit,
    "block": _block,
    "unblock": _unblock,
    "delete": lambda writer, user: delete_guard(writer, user=user),
    "reset_password": _reset_password,
    "reset_mfa": _reset_mfa,
    "unlink": _unlink,
}


def subject_actions(actor, subject: User) -> SubjectActions:
    """For the logged-in `actor` (a User) and `subject`: which of ACTIONS the
    services would allow now, and why each other one would be refused."""
    writer = Writer(by=Actor(user=actor), permissions=held_by(actor))
    allowed, refused = set(), {}
    for action, check in CHECKS.items():
        try:
            check(writer, subject)
        except AccountError as exc:
            refused[action] = str(exc)
        else:
            allowed.add(action)
    return SubjectActions(allowed=frozenset(allowed), refused=refused)
