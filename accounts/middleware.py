"""Request-level guards: who the client really is, and how long a session lives."""

from __future__ import annotations

import ipaddress
import time
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpResponseRedirect
from django.urls import reverse

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
