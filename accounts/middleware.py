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

# Last activity is written at most once a minute, and at most a tenth of
# the idle limit apart (a busy user does not rewrite their session on every
# click). A session is refused only when even the latest unwritten request
# could not have been within the limit: never early, at most one write
# interval late.
SEEN_AT_MAX_INTERVAL = 60


def seen_at_interval(idle_seconds: int) -> int:
    return max(1, min(SEEN_AT_MAX_INTERVAL, idle_seconds // 10))


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
            "session.expired", request=request, actor=user, target=user, details={"reason": reason}
        )
        logout(request)
        messages.warning(request, "Your session expired. Please log in again.")
        url = reverse("account_login")
        if request.method == "GET" and request.path != url:
            url += "?" + urlencode({"next": request.get_full_path()})
        return HttpResponseRedirect(url)


# The generation of the access model (accounts.access) at which this
# session was last found to comply with the MFA policy; any change of groups,
# roles, rules or memberships makes a new one, and the policy looks again.
SESSION_MFA_OK = "iam_mfa_ok"
SESSION_MFA_BY_IDP = "iam_mfa_by_idp"
# What a member of an MFA-required group may open before setting MFA up.
MFA_SETUP_PATHS = ("/2fa/", "/logout/", "/static/", "/reauthenticate/", "/sso/")


def mfa_setup_required(user, session) -> bool:
    from accounts.mfa import setup_required

    return setup_required(user, vouched_by_idp=bool(session.get(SESSION_MFA_BY_IDP)))


def mark_mfa_checked(user, session) -> None:
    """Remember that this session complies, as of the access model now."""
    from accounts.access import current_generation

    # The generation came with the session when the cache is shared
    # (iam.sessions.cached_db): no second round trip at login.
    session[SESSION_MFA_OK] = getattr(session, "acl_generation", None) or current_generation(user)


class MfaPolicyMiddleware:
    """Members of MFA-required groups open nothing but MFA set-up until it is
    done. Once a session is known to comply, the answer is kept in the session
    with the access model's generation, so ordinary requests cost no query and
    a user put into such a group meanwhile is sent to set-up at once."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from accounts.access import current_generation

        if request.user.is_authenticated and not request.path.startswith(MFA_SETUP_PATHS):
            generation = current_generation(request.user)
            if request.session.get(SESSION_MFA_OK) != generation:
                if mfa_setup_required(request.user, request.session):
                    request.session.pop(SESSION_MFA_OK, None)
                    messages.warning(
                        request,
                        "Your group requires two-factor authentication. "
                        "Set up an authenticator app to continue.",
                    )
                    return HttpResponseRedirect(reverse("mfa_activate_totp"))
                request.session[SESSION_MFA_OK] = generation
        return self.get_response(request)
