"""The login flow: what a logged-in session holds, and the one way every login
finishes.

Ways in: a password (allauth's login form), an identity provider (sso), the
API's authorization code flow (its login is the normal login page), a passkey
(allauth's WebAuthn check, then `passkey_login`). Password logins run
allauth's own flow; SSO and passkeys call `complete_login`, which runs the
same flow from its login stages on (an MFA code unless the provider did MFA;
a passkey is both factors). Every one of them ends in allauth calling
the adapter's `post_login`, which calls `session_started` here. Nothing else
writes these session keys, except the middleware that keeps the clocks.

The session contract, for a logged-in person:
- SESSION_LOGIN_AT, SESSION_SEEN_AT: the lifetime clocks (seconds; the idle
  and maximum limits, accounts.middleware).
- SESSION_METHOD: how this session's person came in: "password",
  "sso:<provider>", "passkey".
- SESSION_AUTHENTICATED: {"user": id, "at": seconds} of the latest proof of
  identity in this session (the login, an MFA code, a re-authentication):
  the 10-minute rule for sensitive actions (accounts.reauth).
- SESSION_MFA_BY_IDP: the identity provider did MFA (its `amr`), which meets
  our MFA policy.
- SESSION_SECOND_FACTOR: {"user": id, "at": seconds} of the latest second
  factor proven in this session: a code (authenticator app or recovery
  code) or a security key or passkey, at the login's MFA step, a passkey
  login or an MFA re-authentication (allauth's `authenticator_used`,
  accounts.receivers), or an SSO login whose provider vouched MFA. An
  activation of privileged access needs a fresh one
  (accounts.services.privileged.FRESH_SECOND_FACTOR).
- SESSION_MFA_OK: the user's access stamp (accounts.access) at which the
  session was last found to meet the MFA policy (accounts.mfa); any change
  to what the user may do makes the policy look again.
- SESSION_EXTRA: what the login's door asked to keep (an SSO login's
  provider session id, for single logout).
"""

from __future__ import annotations

import contextlib
import time
from datetime import timedelta

from allauth.account.utils import perform_login
from allauth.mfa.stages import AuthenticateStage
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy

from accounts import mfa
from accounts.audit import Actor, AuditAction, audit

SESSION_LOGIN_AT = "iam_login_at"
SESSION_SEEN_AT = "iam_seen_at"
SESSION_METHOD = "iam_login_method"
SESSION_AUTHENTICATED = "iam_authenticated"
SESSION_MFA_BY_IDP = "iam_mfa_by_idp"
SESSION_MFA_OK = "iam_mfa_ok"
SESSION_EXTRA = "iam_login_extra"
SESSION_SECOND_FACTOR = "iam_second_factor"

# How a login that `complete_login` began tells its end (allauth carries these
# through its login stages, as the Login's signal_kwargs).
_METHOD = "iam_method"
_MFA_BY_IDP = "iam_mfa_by_idp"
_EXTRA = "iam_extra"
_AUTHENTICATED_AT = "iam_authenticated_at"
# What a door's own login stage (accounts.extensions login_stages) needs at
# the end of the login, keyed by the door ("sso"): JSON, kept in the session
# between the stages, never a token.
_STAGE_DATA = "iam_stage_data"

PASSKEY = "passkey"

# What a refused passkey login says, whatever the reason (a key not
# registered here, a blocked or SSO-only account): as a blocked account's
# password login looks like a wrong password, a blocked account's passkey
# looks like an unknown key. No code was typed, so not "Incorrect code".
PASSKEY_REFUSED = gettext_lazy("This passkey was not accepted.")


def complete_login(
    request,
    user,
    *,
    method: str,
    mfa_by_idp: bool = False,
    redirect_url=None,
    extra=None,
    stage_data: dict | None = None,
    authenticated_at: float | None = None,
):
    """A person proved who they are by `method` outside allauth's password
    form (an identity provider): log them in through allauth's stages, as a
    password login would be. `stage_data` is for the door's own stage after
    the MFA step (`stage_data(login)` there). `authenticated_at`: when the
    provider last saw the person prove it (its auth_time, AuthnInstant); a
    provider's live session answers a login without asking, so the login
    itself is no fresh proof. Returns the response to send."""
    return perform_login(
        request,
        user,
        redirect_url=redirect_url,
        signal_kwargs={
            _METHOD: method,
            _MFA_BY_IDP: mfa_by_idp,
            _EXTRA: extra or {},
            _STAGE_DATA: stage_data or {},
            _AUTHENTICATED_AT: authenticated_at,
        },
    )


def stage_data(login) -> dict:
    """What `complete_login` was given for the login stages (allauth's Login)."""
    return (login.signal_kwargs or {}).get(_STAGE_DATA) or {}


def passkey_login(request, authenticator):
    """A passkey proved who they are (allauth checked the signature and that
    the key verified its user, a PIN or fingerprint): log them in through
    the same stages as every login. The passkey is both factors, as in
    allauth (its MFA stage skips a passwordless WebAuthn login).

    Refused, like an unknown key and with no sign that the key was right: a
    blocked account, and an SSO-only one (no local password, an identity
    link): a key it registered itself must not bring back someone the
    identity provider switched off, as a reset link must not
    (accounts.extensions.no_self_service_password).

    Refused with its own message: a key registered as a second factor
    (allauth's passwordless flag off, accounts.mfa.AddWebAuthnForm): it
    proves the key, not the password it was meant to follow.

    Returns the response to send, or the refusal's message ("" for the
    answer an unknown key gets: PASSKEY_REFUSED)."""
    from allauth.mfa.base.internal.flows import post_authentication
    from django.utils.translation import gettext as _

    from accounts.extensions import no_self_service_password

    user = authenticator.user
    refused, message = ("blocked" if not user.is_active else ""), ""
    if not refused and no_self_service_password(user):
        refused = "sso_only"
    if not refused and not authenticator.wrap().is_passwordless:
        refused = "second_factor_key"
        message = _(
            "This security key is registered as a second factor, not as a passkey: "
            "log in with your password, then use the key when asked."
        )
    if refused:
        audit(
            AuditAction.LOGIN_FAILED,
            by=Actor.of(request),
            target=user,
            target_label=user.email,
            success=False,
            details={"method": PASSKEY, "reason": refused},
        )
        return message
    post_authentication(request, authenticator, passwordless=True)
    return complete_login(request, user, method=PASSKEY)


class MfaStage(AuthenticateStage):
    """allauth's MFA step, skipped when the identity provider did MFA, unless
    the door needs the account's own second factor (`stage_data`
    "local_mfa": an SSO link proven by the account's credentials)."""

    def handle(self):
        kwargs = self.login.signal_kwargs or {}
        if kwargs.get(_MFA_BY_IDP) and not stage_data(self.login).get("local_mfa"):
            return None, True
        return super().handle()


def session_started(request, user, signal_kwargs=None) -> None:
    """Every login, at its end: the session contract above, the session
    listed under the user (so it can be shown and ended), and the audit."""
    from allauth.account.adapter import get_adapter
    from allauth.usersessions.models import UserSession

    kwargs = signal_kwargs or {}
    method = kwargs.get(_METHOD) or "password"
    session = request.session
    now = int(time.time())
    session[SESSION_LOGIN_AT] = now
    session[SESSION_SEEN_AT] = now
    session[SESSION_METHOD] = method
    session[SESSION_MFA_BY_IDP] = bool(kwargs.get(_MFA_BY_IDP))
    session[SESSION_EXTRA] = kwargs.get(_EXTRA) or {}
    at = kwargs.get(_AUTHENTICATED_AT)
    _proved(request, SESSION_AUTHENTICATED, user, at)
    if session[SESSION_MFA_BY_IDP]:
        _proved(request, SESSION_SECOND_FACTOR, user, at)
    elif (session.get(SESSION_SECOND_FACTOR) or {}).get("user") != user.pk:
        session.pop(SESSION_SECOND_FACTOR, None)  # someone else's, or none
    # One bounded DELETE instead of allauth's per-login check of every row.
    horizon = timezone.now() - timedelta(seconds=settings.SESSION_COOKIE_AGE)
    UserSession.objects.filter(user=user, created_at__lt=horizon).delete()
    if not session.session_key:
        session.save()
    user_agent_max = UserSession._meta.get_field("user_agent").max_length
    # The same person logging in again keeps the session key (Django's
    # login): listed once, still one INSERT and no lookup.
    UserSession.objects.bulk_create(
        [
            UserSession(
                user=user,
                session_key=session.session_key,
                ip=get_adapter(request).get_client_ip(request),
                user_agent=request.META.get("HTTP_USER_AGENT", "")[:user_agent_max],
            )
        ],
        ignore_conflicts=True,
    )
    by = Actor.of(request, user=user)
    audit(AuditAction.LOGIN_SUCCEEDED, by=by, target=user, details={"method": method})
    # The MFA policy's answer now, while the session is being written anyway,
    # rather than on the first page, which would write the session again.
    if not mfa_setup_required(user, session):
        mark_mfa_met(user, session)


def authenticated_now(request, user) -> None:
    """The person of this session has just proved who they are."""
    request.session[SESSION_AUTHENTICATED] = {"user": user.pk, "at": time.time()}


def _proved(request, key: str, user, at) -> None:
    """The person proved who they are (or a second factor) at `at`, an
    identity provider's time (never later than now; None: now). A later
    proof of the same person in this session stays (a code typed at this
    login's MFA step)."""
    now = time.time()
    moment = (
        min(now, float(at)) if isinstance(at, (int, float)) and not isinstance(at, bool) else now
    )
    record = request.session.get(key)
    if isinstance(record, dict) and record.get("user") == user.pk:
        with contextlib.suppress(TypeError, ValueError):
            moment = max(moment, float(record.get("at")))
    request.session[key] = {"user": user.pk, "at": moment}


def seconds_since_authentication(request) -> float | None:
    """Since this session's person last proved who they are, or None."""
    record = request.session.get(SESSION_AUTHENTICATED)
    user = getattr(request, "user", None)
    if not isinstance(record, dict) or user is None or record.get("user") != user.pk:
        return None
    return time.time() - float(record.get("at") or 0)


def second_factor_now(request, user) -> None:
    """The person of this session has just proved a second factor."""
    request.session[SESSION_SECOND_FACTOR] = {"user": user.pk, "at": time.time()}


def second_factor_at(request) -> float | None:
    """When this session's person last proved a second factor (a Unix
    time), or None: the fact accounts.services.privileged judges."""
    record = request.session.get(SESSION_SECOND_FACTOR)
    user = getattr(request, "user", None)
    if not isinstance(record, dict) or user is None or record.get("user") != user.pk:
        return None
    try:
        return float(record.get("at"))
    except (TypeError, ValueError):
        return None


def login_method(request) -> str:
    """How this session's person came in ("password", "sso:<id>", …)."""
    return request.session.get(SESSION_METHOD) or ""


def mfa_setup_required(user, session) -> bool:
    return mfa.setup_required(user, vouched_by_idp=bool(session.get(SESSION_MFA_BY_IDP)))


def mark_mfa_met(user, session) -> None:
    """This session meets the MFA policy, as the user may act now."""
    session[SESSION_MFA_OK] = user.access_stamp


def mfa_checked_for(user, session) -> bool:
    """Whether the policy was met with the user's current access stamp."""
    return session.get(SESSION_MFA_OK) == user.access_stamp


def forget_mfa_check(session) -> None:
    """The policy must look again (an authenticator was removed)."""
    session.pop(SESSION_MFA_OK, None)
