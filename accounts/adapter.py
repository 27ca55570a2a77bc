"""The one place where django-allauth's behaviour is tuned for the Back Office.

Signup is closed; blocked accounts look exactly like wrong passwords; every
login, failure, logout and reset request is audited; every mail is queued.
"""

from __future__ import annotations

import time
from datetime import timedelta

from allauth.account.adapter import DefaultAccountAdapter
from django.core.exceptions import ValidationError
from django.utils.http import url_has_allowed_host_and_scheme

from accounts import throttle
from accounts.audit import audit
from accounts.selectors import user_get_by_email

SESSION_LOGIN_AT = "iam_login_at"
SESSION_SEEN_AT = "iam_seen_at"
# How a login that goes through allauth's stages began (an SSO login may
# finish requests later, after the MFA code).
SESSION_LOGIN_METHOD = "iam_login_method"


def session_started(request, user, *, method: str) -> None:
    """Every login, password or SSO: start the lifetime clocks, list the
    session under the user (so it can be shown and ended), and audit it."""
    from allauth.account.adapter import get_adapter
    from allauth.usersessions.models import UserSession
    from django.conf import settings
    from django.utils import timezone

    user_agent_max = UserSession._meta.get_field("user_agent").max_length

    now = int(time.time())
    request.session[SESSION_LOGIN_AT] = now
    request.session[SESSION_SEEN_AT] = now
    # One bounded DELETE instead of allauth's per-login check of every row.
    horizon = timezone.now() - timedelta(seconds=settings.SESSION_COOKIE_AGE)
    UserSession.objects.filter(user=user, created_at__lt=horizon).delete()
    # login() has just given the session a new key, so this is a new row:
    # a plain INSERT, where allauth's create_from_request reads first in a
    # transaction of its own.
    if not request.session.session_key:
        request.session.save()
    UserSession.objects.create(
        user=user,
        session_key=request.session.session_key,
        ip=get_adapter(request).get_client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:user_agent_max],
    )
    audit("login.succeeded", request=request, actor=user, target=user, details={"method": method})
    # The MFA policy's answer now, while the session is being written anyway,
    # rather than on the first page, which would write the session again.
    from accounts.middleware import mark_mfa_checked, mfa_setup_required

    if not mfa_setup_required(user, request.session):
        mark_mfa_checked(user, request.session)


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        return False

    def authenticate(self, request, **credentials):
        # allauth hands a correct password of an inactive account on to its
        # "account inactive" page, which tells an attacker the password was
        # right. A blocked account gets the same answer as a wrong password.
        user = super().authenticate(request, **credentials)
        if user is not None and not user.is_active:
            # allauth has just taken this attempt back from the failed-login
            # counters, as for any right password: count it again, or the
            # lockout would tell that this guess was the right one.
            key = self._get_login_attempts_cache_key(request, **credentials)
            throttle.consume(request, "login_failed", key)
            self.authentication_failed(request, **credentials)
            return None
        return user

    def validation_error(self, code, *args):
        if code == "too_many_login_attempts":
            # Say how long, not "later": the longest window of the failed-login rates.
            wait = throttle.wait_text(throttle.retry_after("login_failed"))
            return ValidationError(
                f"Too many failed login attempts. Try again in {wait}.", code=code
            )
        return super().validation_error(code, *args)

    def _get_login_attempts_cache_key(self, request, **credentials) -> str:
        # One account, one count, whatever the host name (see account_key).
        return throttle.account_key(str(credentials.get("email") or ""))

    def pre_authenticate(self, request, **credentials) -> None:
        # Our counters (accounts.throttle) instead of allauth's; allauth's
        # authenticate() rolls this usage back when the password is right.
        key = self._get_login_attempts_cache_key(request, **credentials)
        self._login_failed_rl_usage = throttle.consume(request, "login_failed", key)
        if not self._login_failed_rl_usage:
            raise self.validation_error("too_many_login_attempts")

    def authentication_failed(self, request, **credentials) -> None:
        email = str(credentials.get("email") or "")
        user = user_get_by_email(email) if email else None
        audit(
            "login.failed",
            request=request,
            actor=None,
            target=user,
            target_label=email[:254],
            success=False,
            details={"reason": "blocked" if user is not None and not user.is_active else ""},
        )

    def login(self, request, user) -> None:
        super().login(request, user)
        method = request.session.pop(SESSION_LOGIN_METHOD, "password")
        session_started(request, user, method=method)

    def logout(self, request) -> None:
        user = request.user if request.user.is_authenticated else None
        if user is not None:
            audit("logout", request=request, actor=user, target=user)
            from allauth.usersessions.models import UserSession

            UserSession.objects.filter(session_key=request.session.session_key).delete()
        super().logout(request)

    def send_mail(self, template_prefix, email, context) -> None:
        # Every mail allauth sends (notifications: password changed or reset,
        # MFA changes) is queued, never sent in the request (accounts.mail).
        from allauth.core import context as allauth_context

        from accounts import mail

        mail.queue_template_mail(
            request=allauth_context.request, template=template_prefix, to=email, context=context
        )

    def get_reauthentication_methods(self, user) -> list[dict]:
        # A session that came in through SSO re-authenticates at its provider.
        from allauth.core import context

        from sso.reauth import with_sso_method

        methods = super().get_reauthentication_methods(user)
        return with_sso_method(context.request, user, methods)

    def get_client_ip(self, request) -> str:
        # TrustedProxyMiddleware has already put the real client address here.
        return request.META.get("REMOTE_ADDR") or "0.0.0.0"  # noqa: S104

    def is_safe_url(self, url) -> bool:
        """Redirects after login stay on the host the request came to."""
        from allauth.core import context

        request = context.request
        return bool(url) and url_has_allowed_host_and_scheme(
            url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
