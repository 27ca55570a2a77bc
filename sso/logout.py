"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): logging out
of a session that came in through a provider logs out there too.

Logout is a POST from a page whose CSP form-action is 'self', and Chromium
applies form-action to the redirects that follow a form: the logout's
redirect goes to our own page (`continuation_url`), which sends the browser
on to the provider's end_session_endpoint. The session is gone by then, so
what that page needs (the provider's URL, with the ID token as
id_token_hint) travels in its URL, encrypted and valid for a few minutes,
never readable in a log. The provider sends the browser back to our login
page with a signed `state`, which makes the page say so.
"""

from __future__ import annotations

import base64
import hashlib
import logging

from cryptography.fernet import Fernet, InvalidToken
from django.core import signing
from django.core.cache import cache
from django.urls import reverse
from django.utils.crypto import salted_hmac
from django.utils.http import urlencode
from django.utils.translation import gettext

from sso.errors import SSOError
from sso.registry import get_provider
from sso.sessions import session_extra

logger = logging.getLogger("iam.sso")

CONTINUATION_TTL = 5 * 60  # seconds between our logout and the provider's page
STATE_TTL = 30 * 60  # seconds a person may spend at the provider's logout
STATE_SALT = "sso.logout.state"


def _fernet() -> Fernet:
    key = salted_hmac("sso.logout.continuation", "key", algorithm="sha256").digest()
    return Fernet(base64.urlsafe_b64encode(key))


def redirect_after_logout(request) -> str | None:
    """accounts.extensions.logout_redirects: asked while the session is
    still whole. None when the session did not come in through a provider,
    its logout is switched off (IAM_SSO_<ID>_LOGOUT=false) or it publishes no
    end_session_endpoint; the person then lands on our login page."""
    extra = session_extra(request)
    provider = get_provider(extra.get("provider", "")) if extra else None
    if provider is None or not provider.logout:
        return None
    try:
        url = provider.logout_url(request, extra, signing.dumps(provider.id, salt=STATE_SALT))
    except SSOError as error:
        logger.warning("sso %s: no logout at the provider: %s", provider.id, error.reason)
        return None
    if url is None:
        return None
    token = _fernet().encrypt(url.encode()).decode()
    page = reverse("sso:logout", kwargs={"provider_id": provider.id})
    return f"{page}?{urlencode({'to': token})}"


def provider_logout_url(token) -> str | None:
    """The provider's logout URL a continuation link carries, or None when
    the link is not ours, too old, or used already: it is followed once (a
    copy in a proxy's access log must not give the ID token back)."""
    if not isinstance(token, str) or not token:
        return None
    try:
        url = _fernet().decrypt(token.encode(), ttl=CONTINUATION_TTL).decode()
    except (InvalidToken, ValueError):
        return None
    # Keyed on the decoded bytes, as Fernet reads them: base64 decoding
    # skips stray characters, so one token has many spellings.
    raw = base64.urlsafe_b64decode(token.encode())
    used = f"sso:logout-continuation:{hashlib.sha256(raw).hexdigest()}"
    if not cache.add(used, 1, timeout=CONTINUATION_TTL + 60):
        return None
    return url


def login_page_notices(request) -> list[str]:
    """accounts.extensions.login_page_notices: the provider sent the browser
    back to the login page with our state after logging it out."""
    state = request.GET.get("state")
    if request.method != "GET" or not state:
        return []
    try:
        provider_id = signing.loads(state, salt=STATE_SALT, max_age=STATE_TTL)
    except signing.BadSignature:
        return []
    provider = get_provider(provider_id) if isinstance(provider_id, str) else None
    if provider is None:
        return []
    return [gettext("You have been logged out, also at %(name)s.") % {"name": provider.name}]
