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

from iam import metrics
from sso.errors import SSOError, failed, printable

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
        raise failed(
            provider_name,
            f"the provider is misconfigured: its {what} must be an https URL.",
            "bad_endpoint",
        )
    return url


def http(
    method: str, url: str, provider_name: str, *, provider_id: str = "", kind: str = "", **kwargs
) -> requests.Response:
    """One outbound call, timed and counted by provider id and `kind`
    (discovery, jwks, token, userinfo: iam.metrics)."""
    with metrics.idp_call(provider_id, kind) as call:
        try:
            response = _call(method, url, provider_name, **kwargs)
        except SSOError as error:
            call["error"] = error.reason.removeprefix("idp_")
            raise
        if response.status_code >= 400:
            call["error"] = metrics.status_class(response.status_code)
    return response


def _call(method: str, url: str, provider_name: str, **kwargs) -> requests.Response:
    """One outbound call with a timeout; failures become an SSOError naming the provider."""
    slots = _call_slots()
    if not slots.acquire(timeout=min(SLOT_WAIT, settings.IAM_SSO_HTTP_TIMEOUT)):
        logger.warning("sso %s: every slot for provider calls is taken; refused", provider_name)
        raise failed(
            provider_name,
            "the provider is slow to answer right now. Try again in a moment.",
            "idp_busy",
        )
    try:
        response = _session.request(
            method, url, timeout=settings.IAM_SSO_HTTP_TIMEOUT, allow_redirects=False, **kwargs
        )
    except requests.Timeout:
        raise failed(
            provider_name,
            "the provider did not answer in time. Try again in a moment.",
            "idp_timeout",
        ) from None
    except requests.RequestException as exc:
        # The URL may come from the provider's discovery document.
        safe_url = printable(url, 200)
        logger.warning(
            "sso %s: %s %s failed: %s", provider_name, method, safe_url, type(exc).__name__
        )
        raise failed(
            provider_name, "the provider could not be reached. Try again later.", "idp_unreachable"
        ) from None
    finally:
        slots.release()
    return response


def _get_json(url: str, provider, what: str, kind: str) -> dict:
    provider_name = provider.name
    response = http(
        "GET",
        url,
        provider_name,
        provider_id=provider.id,
        kind=kind,
        headers={"Accept": "application/json"},
    )
    if response.status_code != 200:
        raise failed(provider_name, f"the provider answered with an error ({what}).", "idp_error")
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise failed(provider_name, f"the provider sent an unreadable {what}.", "idp_error")
    return data


def discovery_document(provider) -> dict:
    """The provider's discovery document as it is now: fetched, not checked
    or cached (sso.checks compares its issuer with the setting)."""
    url = _require_endpoint(provider.discovery_url, "discovery URL", provider.name)
    return _get_json(url, provider, "discovery document", "discovery")


def discovery(provider) -> dict:
    """The provider's OpenID configuration, checked once and cached."""
    key = f"sso:discovery:{provider.id}"
    doc = cache.get(key)
    if doc is not None:
        return doc
    doc = _checked_discovery(provider)
    cache.set(key, doc, METADATA_TTL)
    return doc


def _checked_discovery(provider) -> dict:
    doc = discovery_document(provider)
    for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        _require_endpoint(doc.get(field), field, provider.name)
    if doc.get("userinfo_endpoint"):
        _require_endpoint(doc["userinfo_endpoint"], "userinfo_endpoint", provider.name)
    provider.check_discovered_issuer(doc.get("issuer"))
    return doc


def refresh(provider) -> tuple[dict, dict]:
    """Discovery and keys fetched again now (`manage.py sso refresh`), after
    a change at the provider: checked as for a login, and cached only when
    both are good, so a provider that does not answer (or answers something
    unusable) keeps what was cached. The next login uses them at once."""
    doc = _checked_discovery(provider)
    keys = _key_set_at(provider, doc)
    cache.set(f"sso:discovery:{provider.id}", doc, METADATA_TTL)
    cache.set(f"sso:jwks:{provider.id}", keys, METADATA_TTL)
    cache.delete(f"sso:jwks-refetch:{provider.id}")
    return doc, keys


def jwks(provider) -> dict:
    """The provider's signing keys, from the cache when they are there."""
    keys = cache.get(f"sso:jwks:{provider.id}")
    return keys if keys is not None else _fetch_jwks(provider)


def refetch_jwks(provider) -> dict | None:
    """Fresh keys, after a token named a key id we do not know (the provider
    rotated its keys). At most once per JWKS_REFETCH_INTERVAL per provider, so
    forged tokens with random key ids cannot make us hammer the provider:
    None means a refetch happened less than that ago."""
    if not cache.add(f"sso:jwks-refetch:{provider.id}", 1, JWKS_REFETCH_INTERVAL):
        return None
    return _fetch_jwks(provider)


def _fetch_jwks(provider) -> dict:
    keys = _key_set_at(provider, discovery(provider))
    cache.set(f"sso:jwks:{provider.id}", keys, METADATA_TTL)
    return keys


def _key_set_at(provider, doc: dict) -> dict:
    keys = _get_json(doc["jwks_uri"], provider, "key set", "jwks")
    if not isinstance(keys.get("keys"), list):
        raise failed(provider.name, "the provider sent an unreadable key set.", "idp_error")
    return keys
