"""Passwords: links to choose one, and what follows a reset or a change."""

from __future__ import annotations

from django.utils.translation import gettext as _

from accounts import extensions, throttle
from accounts.audit import Actor, AuditAction, audit
from accounts.delegation import access_write
from accounts.errors import AccountError
from accounts.models import User
from accounts.services.emails import email_change_void
from accounts.services.sessions import user_sessions_end


def user_send_password_link(*, user: User, invitation: bool, by: Actor) -> None:
    """Mail a link to choose a password: a reset (valid 1 hour) or, for a new
    account, an invitation (valid 72 hours)."""
    with access_write(by=by, target=user) as writer:
        if invitation:
            writer.require("backoffice:users:create", "invite new accounts")
        else:
            writer.require("backoffice:users:reset-password", "send password resets")
        writer.outranks(user)
        if not user.is_active:
            raise AccountError(
                _("%(email)s is blocked: unblock the account first.") % {"email": user.email},
                code="conflict",
            )
        if user.is_service:
            raise AccountError(
                _("%(email)s is a service account: it has no password, its API client's secret.")
                % {"email": user.email}
            )
        mail_password_link(user=user, invitation=invitation, by=by)


def mail_password_link(*, user: User, invitation: bool, by: Actor) -> None:
    """The link's mail and its audit event, as part of the caller's write.
    The mail is queued; the worker makes the link when it sends (accounts.mail)."""
    from accounts import mail

    mail.queue_password_link(
        by=by, user=user, kind="invitation" if invitation else "password_reset"
    )
    action = AuditAction.USER_INVITED if invitation else AuditAction.PASSWORD_RESET_REQUESTED
    audit(action, by=by, target=user, details={"by": "admin"})


def password_reset_completed(*, user: User, keep_session_key: str | None, by: Actor) -> None:
    """After a reset by link every other session of the user ends (whoever
    knew the old password is out), and the account's failed-login lock is
    lifted (the owner has just proved it by mail)."""
    # Chosen by the mailbox of the account's address (the link dies with an
    # address change): a password that proves an SSO link (sso.services).
    User.objects.filter(pk=user.pk).update(password_proven_for=user.email)
    user.password_proven_for = user.email
    email_change_void(user=user, by=by, reason=AuditAction.PASSWORD_RESET_COMPLETED.value)
    _replaced(AuditAction.PASSWORD_RESET_COMPLETED, user=user, keep=keep_session_key, by=by)
    throttle.clear("login_failed", throttle.account_key(user.email))


def password_changed_by_user(*, user: User, keep_session_key: str, by: Actor) -> None:
    """Own password changed: this session stays, every other one ends."""
    _replaced(AuditAction.PASSWORD_CHANGED, user=user, keep=keep_session_key, by=by)


def _replaced(action: AuditAction, *, user: User, keep: str | None, by: Actor) -> None:
    ended = user_sessions_end(user, keep_session_key=keep)
    extensions.credentials_replaced(user, reason=action.value, by=by)
    audit(action, by=by, target=user, details={"sessions_ended": ended})
