"""The few signal hooks we keep, and why: allauth finishes a password reset
or change, every MFA step and every re-authentication inside its own views;
its signals are the doors it gives us to end the user's other sessions,
record the proof of identity (accounts.login) and write the audit trail.
Our own writes call what they need explicitly (services), never by signal."""

from allauth.account.signals import authentication_step_completed, password_changed, password_reset
from allauth.mfa import signals as mfa_signals

from accounts import login
from accounts.audit import Actor, AuditAction, audit


def _on_password_reset(sender, request, user, **_kwargs):
    from accounts.services import password_reset_completed

    keep = request.session.session_key if request.user == user else None
    password_reset_completed(user=user, keep_session_key=keep, by=Actor.of(request, user=user))


def _on_password_changed(sender, request, user, **_kwargs):
    from accounts.services import password_changed_by_user

    keep = request.session.session_key
    password_changed_by_user(user=user, keep_session_key=keep, by=Actor.of(request, user=user))


def _on_authentication_step(sender, request, user, **_kwargs):
    """A password, an MFA code, a re-authentication: the person proved it
    is them (the 10-minute rule counts from here)."""
    if request is not None and user is not None:
        login.authenticated_now(request, user)


def _on_second_factor(sender, request=None, user=None, **_kwargs):
    """A code, a security key or a passkey was just proven (at a login's MFA
    step, a passkey login or an MFA re-authentication): the time an
    activation of privileged access asks about (accounts.login)."""
    if request is not None and user is not None:
        login.second_factor_now(request, user)


# Security keys and passkeys have actions of their own (the audit screen
# filters by action); the other kinds share the generic ones, with their type.
_WEBAUTHN_ACTIONS = {
    AuditAction.MFA_ADDED: AuditAction.MFA_WEBAUTHN_ADDED,
    AuditAction.MFA_REMOVED: AuditAction.MFA_WEBAUTHN_REMOVED,
}
_REMOVED = (AuditAction.MFA_REMOVED, AuditAction.MFA_WEBAUTHN_REMOVED)


def _mfa_audit(action: AuditAction, success: bool = True):
    def receiver(sender, request=None, user=None, authenticator=None, **kwargs):
        kind = getattr(authenticator, "type", "")
        details = {"type": kind}
        if "reauthentication" in kwargs or "reauthenticated" in kwargs:
            details["reauthentication"] = bool(
                kwargs.get("reauthentication") or kwargs.get("reauthenticated")
            )
        this = action
        if kind == "webauthn":
            this = _WEBAUTHN_ACTIONS.get(action, action)
            if action == AuditAction.MFA_USED and kwargs.get("passwordless"):
                this = AuditAction.MFA_PASSKEY_LOGIN
            name = (getattr(authenticator, "data", None) or {}).get("name")
            if name:
                details["name"] = str(name)[:100]
        by = Actor.of(request, user=user) if request is not None else Actor(user=user)
        audit(this, by=by, target=user, success=success, details=details)
        if this in _REMOVED and request is not None:
            login.forget_mfa_check(request.session)  # the policy looks again

    return receiver


_MFA_RECEIVERS = {
    "authenticator_added": _mfa_audit(AuditAction.MFA_ADDED),
    "authenticator_removed": _mfa_audit(AuditAction.MFA_REMOVED),
    "authenticator_reset": _mfa_audit(AuditAction.MFA_RECOVERY_CODES_REGENERATED),
    "authenticator_used": _mfa_audit(AuditAction.MFA_USED),
    "authentication_failed": _mfa_audit(AuditAction.MFA_FAILED, success=False),
}


def connect() -> None:
    # allauth.usersessions checks every stored session of the user at each
    # login (a query or two per row: login cost grows with the user's session
    # count). accounts.login.session_started lists sessions instead, for
    # every way in.
    from allauth.account.signals import user_logged_in
    from allauth.usersessions.signals import on_user_logged_in

    user_logged_in.disconnect(receiver=on_user_logged_in)
    password_reset.connect(_on_password_reset, dispatch_uid="iam-password-reset")
    password_changed.connect(_on_password_changed, dispatch_uid="iam-password-changed")
    authentication_step_completed.connect(_on_authentication_step, dispatch_uid="iam-auth-step")
    mfa_signals.authenticator_used.connect(_on_second_factor, dispatch_uid="iam-second-factor")
    for name, receiver in _MFA_RECEIVERS.items():
        getattr(mfa_signals, name).connect(receiver, dispatch_uid=f"iam-{name}")
