"""Request-level guards: who the client really is, and how long a session lives."""

from __future__ import annotations

import time
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from accounts import login, mfa
from accounts.audit import Actor, AuditAction, audit
from accounts.login import SESSION_LOGIN_AT, SESSION_SEEN_AT
from iam.proxies import from_trusted_proxy, parse_ip, trusted_proxies

# Last activity is written at most once a minute, and at most a tenth of
# the idle limit apart (a busy user does not rewrite their session on every
# click). A session is refused only when even the latest unwritten request
# could not have been within the limit: never early, at most one write
# interval late.
SEEN_AT_MAX_INTERVAL = 60


def seen_at_interval(idle_seconds: int) -> int:
    return max(1, min(SEEN_AT_MAX_INTERVAL, idle_seconds // 10))


class UserLanguageMiddleware:
    """A logged-in user's own language (User.language) wins over the cookie
    and the browser's Accept-Language, which LocaleMiddleware weighed before
    anyone was authenticated; blank leaves that choice standing."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.languages = {code for code, _name in settings.LANGUAGES}

    def __call__(self, request):
        user = getattr(request, "user", None)
        language = getattr(user, "language", "") if user is not None else ""
        if language in self.languages and language != getattr(request, "LANGUAGE_CODE", None):
            translation.activate(language)
            request.LANGUAGE_CODE = language
        return self.get_response(request)


class TrustedProxyMiddleware:
    """Believe `X-Forwarded-For` / `X-Forwarded-Proto` only from the proxies in
    `IAM_TRUSTED_PROXIES`. Then REMOTE_ADDR is the real client (the rightmost
    address not itself a trusted proxy) and the scheme is the proxy's."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.trusted = trusted_proxies()

    def __call__(self, request):
        meta = request.META
        peer = parse_ip(meta.get("REMOTE_ADDR", ""))
        if peer is not None:
            # A dual-stack socket's ::ffff:a.b.c.d is the IPv4 client: one
            # address for the throttles (not all in ::/64) and the allow-lists.
            meta["REMOTE_ADDR"] = str(peer)
        if from_trusted_proxy(request, self.trusted):
            hops = [parse_ip(h) for h in meta.get("HTTP_X_FORWARDED_FOR", "").split(",")]
            for hop in reversed(hops):
                if hop is None:
                    break
                if hop not in self.trusted:
                    meta["REMOTE_ADDR"] = str(hop)
                    break
            proto = meta.get("HTTP_X_FORWARDED_PROTO", "").split(",")[0].strip().lower()
            if proto in ("http", "https"):
                meta["wsgi.url_scheme"] = proto
        return self.get_response(request)


def _touch_user_session(session_key) -> None:
    """Last seen for "My sessions", written as seldom as SESSION_SEEN_AT."""
    from allauth.usersessions.models import UserSession
    from django.utils import timezone

    if session_key:
        UserSession.objects.filter(session_key=session_key).update(last_seen_at=timezone.now())


class SessionLifetimeMiddleware:
    """End a session after `IAM_SESSION_IDLE_MINUTES` without activity and
    `IAM_SESSION_MAX_HOURS` after login, whatever the activity."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.idle = settings.IAM_SESSION_IDLE_MINUTES * 60
        self.max_age = settings.IAM_SESSION_MAX_HOURS * 3600
        self.interval = seen_at_interval(self.idle)

    def __call__(self, request):
        if request.user.is_authenticated:
            expired = self._check(request)
            if expired:
                return expired
        return self.get_response(request)

    def _check(self, request):
        session = request.session
        now = int(time.time())
        login_at = session.get(SESSION_LOGIN_AT)
        seen_at = session.get(SESSION_SEEN_AT)
        if login_at is None or seen_at is None:
            session[SESSION_LOGIN_AT] = login_at or now
            session[SESSION_SEEN_AT] = now
            return None
        if now - seen_at > self.idle + self.interval:
            return self._expire(request, "idle")
        if now - login_at > self.max_age:
            return self._expire(request, "max_age")
        if now - seen_at >= self.interval:
            session[SESSION_SEEN_AT] = now
            _touch_user_session(session.session_key)
        return None

    def _expire(self, request, reason: str):
        user = request.user
        audit(
            AuditAction.SESSION_EXPIRED,
            by=Actor.of(request),
            target=user,
            details={"reason": reason},
        )
        logout(request)
        messages.warning(request, _("Your session expired. Please log in again."))
        url = reverse("account_login")
        if request.method == "GET" and request.path != url:
            url += "?" + urlencode({"next": request.get_full_path()})
        return HttpResponseRedirect(url)


# What a user the MFA policy covers may open before setting MFA up.
MFA_SETUP_PATHS = ("/2fa/", "/logout/", "/static/", "/reauthenticate/", "/sso/")


class MfaPolicyMiddleware:
    """Users the MFA policy covers (accounts.mfa) open nothing but MFA set-up
    until it is done. Once a session meets the policy, the answer is kept in
    the session with the user's access stamp (accounts.login), so ordinary
    requests cost no query, and a user whose rights change meanwhile (put
    into an MFA-required group, say) is sent to set-up on their next request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if (
            user.is_authenticated
            and not request.path.startswith(MFA_SETUP_PATHS)
            and not login.mfa_checked_for(user, request.session)
        ):
            if login.mfa_setup_required(user, request.session):
                login.forget_mfa_check(request.session)
                reason = mfa.required_reason(user)
                then = _("Set up an authenticator app or a security key to continue.")
                messages.warning(request, f"{reason} {then}")
                if request.method == "GET":  # where to go on once set up (a path here)
                    request.session[mfa.SETUP_NEXT] = request.get_full_path()
                return HttpResponseRedirect(reverse("mfa_activate_totp"))
            login.mark_mfa_met(user, request.session)
        if (
            user.is_authenticated
            and mfa.SETUP_NEXT in request.session
            and not request.path.startswith(MFA_SETUP_PATHS)
        ):
            request.session.pop(mfa.SETUP_NEXT)  # the set-up's "Continue" was followed
        return self.get_response(request)
