"""ID token validation (OpenID Connect Core 1.0 §3.1.3.7), and logout
token validation (OpenID Connect Back-Channel Logout 1.0 §2.6).

joserfc (Authlib's JOSE library) checks the signature against the
provider's published keys, with only the algorithms the provider publishes
(never `none`, never a symmetric one). Authlib's `CodeIDToken` then checks
iss (pinned), aud, azp, exp, iat, nonce and that sub is present.
"""

from __future__ import annotations

import hashlib
import time

from authlib.oidc.core import CodeIDToken
from django.core.cache import cache
from django.utils.translation import gettext_noop
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from sso import metadata

LEEWAY = 60  # seconds of clock skew we accept
MAX_AGE = 10 * 60  # an ID token older than this is not accepted
ASYMMETRIC = {
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
}


def _header(token: str) -> dict:
    import base64
    import json

    try:
        segment = token.split(".")[0]
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, IndexError, TypeError):
        return {}


def _allowed_algorithms(provider, discovery: dict) -> list[str]:
    published = discovery.get("id_token_signing_alg_values_supported") or ["RS256"]
    allowed = [alg for alg in published if alg in ASYMMETRIC]
    if not allowed:
        raise provider.fail(
            gettext_noop("the provider publishes no signing algorithm we accept."), "bad_alg"
        )
    return allowed


def _key_set(provider, kid) -> KeySet:
    keys = metadata.jwks(provider)
    if kid and not _names_key(keys, kid):
        keys = metadata.refetch_jwks(provider)  # keys rotated?
        if keys is None:
            # Refetched less than a minute ago; another request may have
            # brought the new key in since.
            keys = metadata.jwks(provider)
            if not _names_key(keys, kid):
                raise provider.fail(
                    gettext_noop(
                        "the provider's signing keys are being refreshed. Try again in a minute."
                    ),
                    "jwks_refresh_pending",
                )
    try:
        return KeySet.import_key_set(keys)
    except (JoseError, ValueError, TypeError, KeyError):
        raise provider.fail(
            gettext_noop("the provider sent an unreadable key set."), "idp_error"
        ) from None


def _names_key(keys: dict, kid) -> bool:
    return any(isinstance(k, dict) and k.get("kid") == kid for k in keys["keys"])


def validate_id_token(provider, id_token, *, nonce: str, authenticated_since=None) -> dict:
    """The claims of a valid ID token, or SSOError saying what was wrong.
    `authenticated_since` (a re-authentication: when we sent the browser)
    requires an auth_time no earlier than that, give or take the skew."""
    if not isinstance(id_token, str) or id_token.count(".") != 2:
        raise provider.fail(gettext_noop("the provider sent no valid ID token."), "no_id_token")
    discovery = metadata.discovery(provider)
    algorithms = _allowed_algorithms(provider, discovery)
    header = _header(id_token)
    if header.get("alg") not in algorithms:
        raise provider.fail(
            gettext_noop("the ID token is signed with an algorithm we do not accept."), "bad_alg"
        )
    key_set = _key_set(provider, header.get("kid"))
    try:
        token = jwt.decode(id_token, key_set, algorithms=algorithms)
    except (JoseError, ValueError) as exc:
        raise provider.fail(
            gettext_noop("the ID token signature is not valid."),
            f"bad_signature:{type(exc).__name__}",
        ) from None

    claims = token.claims
    issuer = provider.expected_issuer(claims, discovery["issuer"])
    checked = CodeIDToken(
        claims,
        token.header,
        options={
            "iss": {"essential": True, "value": issuer},
            "aud": {"essential": True, "value": provider.client_id},
            "sub": {"essential": True},
            "exp": {"essential": True},
            "iat": {"essential": True},
            "nonce": {"essential": True, "value": nonce},
        },
        params={"nonce": nonce, "client_id": provider.client_id},
    )
    try:
        checked.validate(now=int(time.time()), leeway=LEEWAY)
    except JoseError as exc:
        claim = getattr(exc, "claim", "") or type(exc).__name__
        raise provider.fail(f"the ID token is not valid ({claim}).", f"bad_claim:{claim}") from None
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or iat < time.time() - MAX_AGE - LEEWAY:
        raise provider.fail(gettext_noop("the ID token is too old."), "bad_claim:iat")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise provider.fail(gettext_noop("the ID token names no subject."), "bad_claim:sub")
    if authenticated_since is not None:
        _check_fresh(provider, claims.get("auth_time"), authenticated_since)
    return dict(claims)


def _check_fresh(provider, auth_time, since: float) -> None:
    """A re-authentication counts only if the person really logged in again:
    a live provider session at an unattended browser would otherwise pass
    silently. OpenID Connect Core §3.1.2.1 makes auth_time required when
    max_age is asked. With REAUTH=prompt (a provider that refuses max_age or
    always answers auth_time 0) the operator relies on the provider's
    prompt=login: no auth_time, or 0, is accepted; a real one that is not
    fresh is still refused."""
    prompt_only = provider.reauth == "prompt"
    if prompt_only and (auth_time is None or (_number(auth_time) and auth_time <= 0)):
        return
    if not _number(auth_time):
        raise provider.fail(
            gettext_noop(
                "the provider did not say when you logged in (auth_time), so this cannot "
                "confirm it is you. Ask an administrator."
            ),
            "reauth_no_auth_time",
        )
    if auth_time <= 0:
        # glewlwyd 2.7 answers auth_time 0 whatever happened.
        raise provider.fail(
            gettext_noop(
                "the provider answered auth_time %(auth_time)s instead of when you logged "
                "in, so this cannot confirm it is you. An administrator should set "
                "%(setting)s=prompt for a provider that honours only prompt=login."
            ),
            "reauth_auth_time_zero",
            params={"auth_time": auth_time, "setting": f"{provider.env_prefix}REAUTH"},
        )
    if not since - LEEWAY <= auth_time <= time.time() + LEEWAY:
        raise provider.fail(
            gettext_noop("the provider did not ask you to log in again. Please try again."),
            "reauth_not_fresh",
        )


BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_WINDOW = 5 * 60  # seconds a logout token's iat may be away from now


def validate_logout_token(provider, logout_token) -> dict:
    """The claims of a valid logout token (OpenID Connect Back-Channel
    Logout 1.0 §2.6), or SSOError naming what was wrong. Its `jti` is
    remembered (in the shared cache, for the token's lifetime) once the token
    is valid: the same token twice is refused."""
    if not isinstance(logout_token, str) or logout_token.count(".") != 2:
        raise provider.fail("no logout token.", "no_token")
    discovery = metadata.discovery(provider)
    algorithms = _allowed_algorithms(provider, discovery)
    header = _header(logout_token)
    if header.get("alg") not in algorithms:
        raise provider.fail("the logout token's algorithm is not accepted.", "bad_alg")
    key_set = _key_set(provider, header.get("kid"))
    try:
        claims = dict(jwt.decode(logout_token, key_set, algorithms=algorithms).claims)
    except (JoseError, ValueError) as exc:
        raise provider.fail(
            "the logout token signature is not valid.", f"bad_signature:{type(exc).__name__}"
        ) from None
    now = time.time()
    issuer = provider.expected_issuer(claims, discovery["issuer"])
    if claims.get("iss") != issuer:
        raise provider.fail("the logout token comes from another issuer.", "bad_claim:iss")
    aud = claims.get("aud")
    if provider.client_id not in (aud if isinstance(aud, list) else [aud]):
        raise provider.fail("the logout token is not for us.", "bad_claim:aud")
    iat = claims.get("iat")
    if not _number(iat) or abs(now - iat) > LOGOUT_TOKEN_WINDOW + LEEWAY:
        raise provider.fail("the logout token is too old or from the future.", "bad_claim:iat")
    exp = claims.get("exp")
    if exp is not None and (not _number(exp) or exp < now - LEEWAY):
        raise provider.fail("the logout token has expired.", "bad_claim:exp")
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_EVENT), dict):
        raise provider.fail("the logout token is not a logout event.", "bad_claim:events")
    if "nonce" in claims:
        raise provider.fail("a logout token must not carry a nonce.", "bad_claim:nonce")
    sid, sub = claims.get("sid"), claims.get("sub")
    if not _named(sid) and not _named(sub):
        raise provider.fail("the logout token names no session and no subject.", "bad_claim:sid")
    for name, value in (("sid", sid), ("sub", sub)):
        if value is not None and not _named(value):
            raise provider.fail(f"the logout token's {name} is not valid.", f"bad_claim:{name}")
    jti = claims.get("jti")
    if not _named(jti):
        raise provider.fail("the logout token has no jti.", "bad_claim:jti")
    # Remembered as long as its iat lets it pass.
    lifetime = iat + LOGOUT_TOKEN_WINDOW + 2 * LEEWAY - now
    key = f"sso:logout-jti:{provider.id}:{hashlib.sha256(jti.encode()).hexdigest()}"
    if not cache.add(key, 1, timeout=max(int(lifetime), LEEWAY)):
        raise provider.fail("the logout token was used already.", "replayed_jti")
    return claims


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _named(value) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 255
