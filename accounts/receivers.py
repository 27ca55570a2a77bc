"""The few signal hooks we keep, and why.

- Compiled access rules must be forgotten on *every* write path to groups,
  roles, rules and memberships (screens, shell, migrations), so cache
  invalidation hangs on model signals rather than on each service.
- allauth finishes a password reset or change, and every MFA step, inside its
  own views; its signals are the doors it gives us to end the user's other
  sessions and to write the audit trail.
"""

from allauth.account.signals import password_changed, password_reset
from allauth.mfa import signals as mfa_signals
from django.db.models.signals import m2m_changed, post_delete, post_save

from accounts import access
from accounts.models import Group, Membership, Role, Rule, User


def _invalidate(**_kwargs):
    access.invalidate_now_and_on_commit()


def _on_password_reset(sender, request, user, **_kwargs):
    from accounts.services import password_reset_completed

    password_reset_completed(request=request, user=user)


def _on_password_changed(sender, request, user, **_kwargs):
    from accounts.services import password_changed_by_user

    password_changed_by_user(request=request, user=user)


def _mfa_audit(action: str, success: bool = True):
    def receiver(sender, request=None, user=None, authenticator=None, **kwargs):
        from accounts.audit import audit
        from accounts.middleware import SESSION_MFA_OK

        details = {"type": getattr(authenticator, "type", "")}
        if "reauthentication" in kwargs or "reauthenticated" in kwargs:
            details["reauthentication"] = bool(
                kwargs.get("reauthentication") or kwargs.get("reauthenticated")
            )
        audit(action, request=request, actor=user, target=user, success=success, details=details)
        if action == "mfa.removed" and request is not None:
            request.session.pop(SESSION_MFA_OK, None)  # the policy looks again

    return receiver


_MFA_RECEIVERS = {
    "authenticator_added": _mfa_audit("mfa.added"),
    "authenticator_removed": _mfa_audit("mfa.removed"),
    "authenticator_reset": _mfa_audit("mfa.recovery_codes.regenerated"),
    "authenticator_used": _mfa_audit("mfa.used"),
    "authentication_failed": _mfa_audit("mfa.failed", success=False),
}


def connect() -> None:
    # allauth.usersessions checks every stored session of the user at each
    # login (a query or two per row: login cost grows with the user's session
    # count). accounts.adapter.session_started lists sessions instead, for
    # password and SSO logins alike.
    from allauth.account.signals import user_logged_in
    from allauth.usersessions.signals import on_user_logged_in

    user_logged_in.disconnect(receiver=on_user_logged_in)

    for model in (Group, Role, Rule, Membership):
        post_save.connect(_invalidate, sender=model, dispatch_uid=f"acl-save-{model.__name__}")
        post_delete.connect(_invalidate, sender=model, dispatch_uid=f"acl-del-{model.__name__}")
    for through in (Group.roles.through, User.groups.through):
        m2m_changed.connect(_invalidate, sender=through, dispatch_uid=f"acl-m2m-{through.__name__}")
    password_reset.connect(_on_password_reset, dispatch_uid="iam-password-reset")
    password_changed.connect(_on_password_changed, dispatch_uid="iam-password-changed")
    for name, receiver in _MFA_RECEIVERS.items():
        getattr(mfa_signals, name).connect(receiver, dispatch_uid=f"iam-{name}")
