"""Identity-provider metadata: discovery documents and signing keys.

Both are kept in the Django cache (shared by every app server when the cache
is Redis), so after warm-up a login makes no request for them. An ID token
that names a key we do not know triggers one JWKS refetch (the provider has
rotated its keys), at most once a minute per provider, so forged tokens with
random key ids cannot make us hammer the provider.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.cache import cache

from sso.errors import SSOError

logger = logging.getLogger("iam.sso")

METADATA_TTL = 60 * 60
JWKS_REFETCH_INTERVAL = 60
_session = requests.Session()
# A bulkhead: at most IAM_SSO_MAX_CONCURRENT_CALLS calls to identity providers
# at once per process. A provider that hangs holds each caller's thread for up
# to IAM_SSO_HTTP_TIMEOUT; without a bound it could hold every thread of a
# worker and stall pages that have nothing to do with SSO. A call that finds
# no free slot within SLOT_WAIT seconds fails with a clear message: long
# enough to ride out a burst of healthy calls (a token call takes ~0.1-0.3 s),
# short enough that waiting for a slot does not itself tie up the worker.
SLOT_WAIT = 0.25
_slots: tuple[int, threading.BoundedSemaphore] | None = None
_slots_lock = threading.Lock()


def _call_slots() -> threading.BoundedSemaphore:
    global _slots
    size = settings.IAM_SSO_MAX_CONCURRENT_CALLS
    with _slots_lock:
        if _slots is None or _slots[0] != size:
            _slots = (size, threading.BoundedSemaphore(size))
        return _slots[1]


def is_allowed_endpoint(url: str) -> bool:
    """https anywhere; plain http only to loopback (local testing)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if not parts.hostname:
        return False
    if parts.scheme == "https":
        return True
    if parts.scheme != "http":
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def _require_endpoint(url, what: str, provider_name: str) -> str:
    if not isinstance(url, str) or not is_allowed_endpoint(url):
        raise SSOError(
            f"{provider_name} is misconfigured: its {what} must be an https URL.", "bad_endpoint"
        )
    return url


def http(method: str, url: str, provider_name: str, **kwargs) -> requests.Response:
    """One outbound call with a timeout; failures become an SSOError naming the provider."""
    slots = _call_slots()
    if not slots.acquire(timeout=min(SLOT_WAIT, settings.IAM_SSO_HTTP_TIMEOUT)):
        logger.warning("sso %s: every slot for provider calls is taken; refused", provider_name)
        raise SSOError(
            f"{provider_name} is slow to answer right now. Try again in a moment.", "idp_busy"
        )
    try:
        response = _session.request(
            method, url, timeout=settings.IAM_SSO_HTTP_TIMEOUT, allow_redirects=False, **kwargs
        )
    except requests.Timeout:
        raise SSOError(f"{provider_name} did not answer in time.", "idp_timeout") from None
    except requests.RequestException as exc:
        logger.warning("sso %s: %s %s failed: %s", provider_name, method, url, type(exc).__name__)
        raise SSOError(f"{provider_name} could not be reached.", "idp_unreachable") from None
    finally:
        slots.release()
    return response


def _get_json(url: str, provider_name: str, what: str) -> dict:
    response = http("GET", url, provider_name, headers={"Accept": "application/json"})
    if response.status_code != 200:
        raise SSOError(f"{provider_name} answered with an error ({what}).", "idp_error")
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise SSOError(f"{provider_name} sent an unreadable {what}.", "idp_error")
    return data


def discovery(provider) -> dict:
    """The provider's OpenID configuration, checked once and cached."""
    key = f"sso:discovery:{provider.id}"
    doc = cache.get(key)
    if doc is not None:
        return doc
    url = _require_endpoint(provider.discovery_url, "discovery URL", provider.name)
    doc = _get_json(url, provider.name, "discovery document")
    for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        _require_endpoint(doc.get(field), field, provider.name)
    if doc.get("userinfo_endpoint"):
        _require_endpoint(doc["userinfo_endpoint"], "userinfo_endpoint", provider.name)
    provider.check_discovered_issuer(doc.get("issuer"))
    cache.set(key, doc, METADATA_TTL)
    return doc


def jwks(provider, *, refresh: bool = False) -> dict:
    """The provider's signing keys. `refresh` asks for a refetch, which is
    honoured at most once per JWKS_REFETCH_INTERVAL."""
    key = f"sso:jwks:{provider.id}"
    keys = None if refresh else cache.get(key)
    if keys is not None:
        return keys
    if refresh and not cache.add(f"sso:jwks-refetch:{provider.id}", 1, JWKS_REFETCH_INTERVAL):
        cached = cache.get(key)
        if cached is not None:
            return cached
    doc = discovery(provider)
    keys = _get_json(doc["jwks_uri"], provider.name, "key set")
    if not isinstance(keys.get("keys"), list):
        raise SSOError(f"{provider.name} sent an unreadable key set.", "idp_error")
    cache.set(key, keys, METADATA_TTL)
    return keys
