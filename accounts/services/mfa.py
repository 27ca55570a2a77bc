"""Second factors, as an admin acts on them (the owner's own steps are
allauth's pages, audited by accounts.receivers)."""

from __future__ import annotations

from django.utils.translation import gettext as _

from accounts import access
from accounts.audit import Actor, AuditAction, audit
from accounts.delegation import access_write
from accounts.errors import AccountError
from accounts.models import User


def mfa_reset_guard(writer, *, user: User) -> list[str]:
    """What resetting `user`'s MFA needs (users:reset-mfa, rank, something to
    reset): raises the refusal, else returns the kinds to remove. The user
    page asks it too (accounts.subject_actions), in the same words."""
    from allauth.mfa.models import Authenticator

    writer.require("backoffice:users:reset-mfa", "reset two-factor authentication")
    writer.outranks(user)
    types = sorted(Authenticator.objects.filter(user=user).values_list("type", flat=True))
    if not types:
        raise AccountError(
            _("%(email)s has no two-factor authentication to reset.") % {"email": user.email},
            code="conflict",
        )
    return types


def user_mfa_reset(*, user: User, by: Actor) -> int:
    """An admin removes a user's authenticators (lost phone); the user sets
    MFA up again at next login if the policy covers them (their sessions and
    tokens check the policy again: a new access stamp)."""
    from allauth.mfa.models import Authenticator

    with access_write(by=by, target=user) as writer:
        types = mfa_reset_guard(writer, user=user)
        Authenticator.objects.filter(user=user).delete()
        access.changed(User.objects.filter(pk=user.pk))
        audit(AuditAction.MFA_RESET, by=by, target=user, details={"removed": types})
    return len(types)
