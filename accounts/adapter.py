"""The one place where django-allauth's behaviour is tuned for the Back Office.

Signup is closed; blocked accounts look exactly like wrong passwords; every
login, failure, logout and reset request is audited; every mail is queued.
"""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.auth_backends import AuthenticationBackend
from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from accounts import extensions, login, throttle
from accounts.audit import Actor, AuditAction, audit
from accounts.selectors import user_get_by_email

# The session's note that the password just set was the account's first.
FIRST_PASSWORD = "iam_first_password"
PASSWORD_CHANGED = "account/messages/password_changed.txt"


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        return False

    def authenticate(self, request, **credentials):
        """allauth's, with our throttle (accounts.throttle) counting: an
        attempt counts before the password is checked (parallel guesses
        cannot slip through) and a right password takes its count back. A
        blocked account's right password is refused like a wrong one and
        keeps its count: the lockout must not tell that the guess was right
        (allauth would show its "account inactive" page)."""
        key = self._get_login_attempts_cache_key(request, **credentials)
        hits = throttle.consume(request, "login_failed", key)
        if hits is None:
            raise self.validation_error("too_many_login_attempts")
        AuthenticationBackend.unstash_authenticated_user()
        user = authenticate(request, **credentials)
        user = user or AuthenticationBackend.unstash_authenticated_user()
        # may_log_in: active, and a person (a service account never logs in).
        if user is not None and user.may_log_in:
            hits.rollback()
            return user
        self.authentication_failed(request, **credentials)
        return None

    def validation_error(self, code, *args):
        if code == "too_many_login_attempts":
            # Say how long, not "later": the longest window of the failed-login rates.
            wait = throttle.wait_text(throttle.retry_after("login_failed"))
            return ValidationError(
                _("Too many failed login attempts. Try again in %(wait)s.") % {"wait": wait},
                code=code,
            )
        return super().validation_error(code, *args)

    def _get_login_attempts_cache_key(self, request, **credentials) -> str:
        # One account, one count, whatever the host name (see account_key).
        return throttle.account_key(str(credentials.get("email") or ""))

    def authentication_failed(self, request, **credentials) -> None:
        email = str(credentials.get("email") or "")
        user = user_get_by_email(email) if email else None
        audit(
            AuditAction.LOGIN_FAILED,
            by=Actor.of(request),
            target=user,
            target_label=email[:254],
            success=False,
            details={"reason": "blocked" if user is not None and not user.is_active else ""},
        )

    def set_password(self, user, password) -> None:
        """Every password set through allauth (a reset link, a change)
        notes whether it is the account's first one (an invitation), so the
        pages after it say "set", not "changed" (`add_message`,
        account/password_reset_from_key_done.html)."""
        from allauth.core import context

        session = getattr(context.request, "session", None)
        first = not user.has_usable_password()
        super().set_password(user, password)
        if session is not None:
            if first:
                session[FIRST_PASSWORD] = True
            else:
                session.pop(FIRST_PASSWORD, None)

    def add_message(self, request, level, message_template=None, message_context=None, **kw):
        if message_template == PASSWORD_CHANGED and request.session.get(FIRST_PASSWORD):
            return super().add_message(
                request, level, message=_("Your password is set. You can now log in.")
            )
        return super().add_message(request, level, message_template, message_context, **kw)

    def post_login(self, request, user, **kwargs):
        # Every login ends here, whatever the way in (accounts.login).
        login.session_started(request, user, kwargs.get("signal_kwargs"))
        return super().post_login(request, user, **kwargs)

    def get_login_stages(self) -> list[str]:
        # allauth's MFA step, skipped when the identity provider did MFA;
        # then the stages other apps add (accounts.extensions).
        stages = super().get_login_stages()
        return [
            "accounts.login.MfaStage" if s == "allauth.mfa.stages.AuthenticateStage" else s
            for s in stages
        ] + list(extensions.registry.login_stages)  # after the MFA step

    def logout(self, request) -> None:
        user = request.user if request.user.is_authenticated else None
        if user is not None:
            audit(AuditAction.LOGOUT, by=Actor.of(request), target=user)
            from allauth.usersessions.models import UserSession

            UserSession.objects.filter(session_key=request.session.session_key).delete()
        super().logout(request)

    def get_logout_redirect_url(self, request) -> str:
        # Asked before the session ends: a session that came in through an
        # identity provider may log out there too (accounts.extensions).
        if request.user.is_authenticated:
            url = extensions.logout_redirect(request)
            if url:
                return url
        return super().get_logout_redirect_url(request)

    def send_mail(self, template_prefix, email, context) -> None:
        # Every mail allauth sends (notifications: password changed or reset,
        # MFA changes) is queued, never sent in the request (accounts.mail).
        from allauth.core import context as allauth_context

        from accounts import mail

        mail.queue_template_mail(
            by=Actor.of(allauth_context.request),
            template=template_prefix,
            to=email,
            context=context,
        )

    def get_reauthentication_methods(self, user) -> list[dict]:
        # A session that came in through SSO re-authenticates at its provider
        # (the sso app adds that method: accounts.extensions).
        from allauth.core import context

        methods = super().get_reauthentication_methods(user)
        return extensions.reauthentication_methods(context.request, user, methods)

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
