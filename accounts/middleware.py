"""Request-level guards: who the client really is, and how long a session lives."""

from __future__ import annotations

import ipaddress
import time
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth import middleware as auth_middleware
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.functional import SimpleLazyObject

from accounts.adapter import SESSION_LOGIN_AT, SESSION_SEEN_AT
from accounts.audit import audit

# Last-activity is written at most this often, so an active user's requests
# do not each rewrite the session row. Idle timeouts are exact to this.
SEEN_AT_RESOLUTION = 60


def _parse_ip(value: str):
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


class TrustedProxyMiddleware:
    """Believe `X-Forwarded-For` / `X-Forwarded-Proto` only from the proxies in
    `IAM_TRUSTED_PROXIES`. Then REMOTE_ADDR is the real client (the rightmost
    address not itself a trusted proxy) and the scheme is the proxy's."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.trusted = {ip for ip in map(_parse_ip, settings.IAM_TRUSTED_PROXIES) if ip}

    def __call__(self, request):
        meta = request.META
        if self.trusted and _parse_ip(meta.get("REMOTE_ADDR", "")) in self.trusted:
            hops = [_parse_ip(h) for h in meta.get("HTTP_X_FORWARDED_FOR", "").split(",")]
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


class AuthenticationMiddleware(auth_middleware.AuthenticationMiddleware):
    """Django's, and the user it loads carries the generation of the access
    rules that came in the same cache round trip as the session
    (iam.sessions.cached_db), so the page's access checks need no second one.
    The user object lives for this request only, and so does the value."""

    def process_request(self, request):
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: _user_with_generation(request))


def _user_with_generation(request):
    user = auth_middleware.get_user(request)
    generation = getattr(request.session, "acl_generation", None)
    if generation is not None:
        user._iam_generation = generation
    return user


class SessionLifetimeMiddleware:
    """End a session after `IAM_SESSION_IDLE_MINUTES` without activity and
    `IAM_SESSION_MAX_HOURS` after login, whatever the activity."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.idle = settings.IAM_SESSION_IDLE_MINUTES * 60
        self.max_age = settings.IAM_SESSION_MAX_HOURS * 3600

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
        if now - seen_at > self.idle:
            return self._expire(request, "idle")
        if now - login_at > self.max_age:
            return self._expire(request, "max_age")
        if now - seen_at >= SEEN_AT_RESOLUTION:
            session[SESSION_SEEN_AT] = now
            _touch_user_session(session.session_key)
        return None

    def _expire(self, request, reason: str):
        user = request.user
        audit(
            "session.expired", request=request, actor=user, target=user, details={"reason": reason}
        )
        logout(request)
        messages.warning(request, "Your session expired. Please log in again.")
        url = reverse("account_login")
        if request.method == "GET" and request.path != url:
            url += "?" + urlencode({"next": request.get_full_path()})
        return HttpResponseRedirect(url)


SESSION_MFA_OK = "iam_mfa_ok"
SESSION_MFA_BY_IDP = "iam_mfa_by_idp"
# What a member of an MFA-required group may open before setting MFA up.
MFA_SETUP_PATHS = ("/2fa/", "/logout/", "/static/", "/reauthenticate/", "/sso/")


def mfa_setup_required(user, session) -> bool:
    """Member of an IAM_MFA_REQUIRED_GROUPS group, without an authenticator
    app, and not vouched for by an SSO provider that did MFA (`amr`)."""
    from allauth.mfa.models import Authenticator

    if session.get(SESSION_MFA_BY_IDP) or not settings.IAM_MFA_REQUIRED_GROUPS:
        return False
    if not user.memberships.filter(group__name__in=settings.IAM_MFA_REQUIRED_GROUPS).exists():
        return False
    return not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


class MfaPolicyMiddleware:
    """Members of MFA-required groups open nothing but MFA set-up until it is
    done. Once a session is known to comply, the answer is kept in the session
    so ordinary requests cost no query."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            request.user.is_authenticated
            and not request.session.get(SESSION_MFA_OK)
            and not request.path.startswith(MFA_SETUP_PATHS)
        ):
            if mfa_setup_required(request.user, request.session):
                messages.warning(
                    request,
                    "Your group requires two-factor authentication. "
                    "Set up an authenticator app to continue.",
                )
                return HttpResponseRedirect(reverse("mfa_activate_totp"))
            request.session[SESSION_MFA_OK] = True
        return self.get_response(request)
