"""The authorization code flow with PKCE, state and nonce.

`begin` puts a one-time state in the session and sends the browser to the
provider; `complete` takes the state back out (so a callback can be used
once), trades the code for tokens at the token endpoint, validates the ID
token and returns its claims. Everything that can go wrong raises SSOError.
"""

from __future__ import annotations

import secrets
import time
from urllib.parse import quote

from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from django.http import HttpRequest
from django.utils.http import urlencode
from django.utils.translation import gettext_noop
from requests.auth import HTTPBasicAuth

from sso import metadata
from sso.errors import SSOError, printable
from sso.tokens import validate_id_token

SESSION_KEY = "sso_pending"
STATE_TTL = 10 * 60  # seconds a person may spend at the provider
MAX_PENDING = 5


def redirect_uri(request: HttpRequest, provider) -> str:
    return request.build_absolute_uri(provider.callback_path())


def begin(request: HttpRequest, provider, next_url: str = "", reauth_user=None) -> str:
    """The provider's authorization URL for this browser. With `reauth_user`
    (the logged-in user's id) it is a re-authentication: the provider is asked
    for a fresh login, never its live session (prompt=login, and max_age=0
    unless IAM_SSO_<ID>_REAUTH is `prompt`)."""
    doc = metadata.discovery(provider)
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    verifier = generate_token(64) if provider.pkce else ""
    remember(
        request,
        state,
        provider,
        next_url=next_url,
        reauth_user=reauth_user,
        nonce=nonce,
        verifier=verifier,
    )
    query = {
        "response_type": "code",
        "client_id": provider.client_id,
        "redirect_uri": redirect_uri(request, provider),
        "scope": " ".join(provider.scopes),
        "state": state,
        "nonce": nonce,
    }
    if reauth_user is not None:
        # OpenID Connect Core §3.1.2.1: max_age=0 obliges the provider to
        # authenticate anew and to say when (auth_time); prompt=login asks the
        # same of providers that ignore max_age. Some refuse max_age=0 or
        # answer auth_time 0 (glewlwyd): REAUTH=prompt sends prompt=login only.
        query["prompt"] = "login"
        if provider.reauth == "max_age":
            query["max_age"] = "0"
    if verifier:
        # Always S256 unless IAM_SSO_<ID>_PKCE=false: many providers support
        # it without listing code_challenge_methods_supported in discovery.
        query["code_challenge"] = create_s256_code_challenge(verifier)
        query["code_challenge_method"] = "S256"
    endpoint = doc["authorization_endpoint"]
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(query)}"


def remember(request: HttpRequest, key: str, provider, *, next_url: str, reauth_user, **extra):
    """Keep a sign-in this browser starts, under `key` (the OIDC state, or
    the SAML request id): at most MAX_PENDING at once, each for STATE_TTL."""
    pending = {
        s: v
        for s, v in request.session.get(SESSION_KEY, {}).items()
        if v["at"] > time.time() - STATE_TTL
    }
    pending = dict(sorted(pending.items(), key=lambda kv: kv[1]["at"])[-(MAX_PENDING - 1) :])
    pending[key] = {
        "provider": provider.id,
        "next": next_url,
        "at": int(time.time()),
        "reauth": reauth_user,
        **extra,
    }
    request.session[SESSION_KEY] = pending


def take_pending(request: HttpRequest, provider, state) -> dict:
    """The pending login this state names; it can be taken once only."""
    pending = request.session.get(SESSION_KEY, {})
    entry = pending.pop(state, None) if isinstance(state, str) else None
    request.session[SESSION_KEY] = pending
    if entry is None or entry["provider"] != provider.id:
        raise provider.fail(
            gettext_noop(
                "this sign-in link is not valid here (expired, used already, or from another "
                "browser). Please try again."
            ),
            "state_mismatch",
        )
    if entry["at"] < time.time() - STATE_TTL:
        raise provider.fail(
            gettext_noop("the sign-in took too long. Please try again."), "state_expired"
        )
    return entry


def complete(request: HttpRequest, provider, entry: dict) -> tuple[dict, str]:
    """Claims of the person who signed in, for the pending sign-in `entry`
    (from take_pending), and the ID token they came in (the id_token_hint of
    a logout at the provider). A re-authentication must carry a fresh
    auth_time."""
    params = request.GET
    reauth = entry.get("reauth") is not None
    if params.get("error"):
        raise _provider_error(
            provider,
            params["error"],
            "idp_error",
            params.get("error_description", ""),
            reauth=reauth,
        )
    # RFC 9207: a provider that names itself in the callback must be the one
    # we sent the person to (defeats mix-up between providers).
    if "iss" in params and params["iss"] != metadata.discovery(provider).get("issuer"):
        raise provider.fail(gettext_noop("the answer came from another provider."), "iss_mismatch")
    code = params.get("code")
    if not code:
        raise provider.fail(gettext_noop("the provider sent no authorization code."), "no_code")
    tokens = _exchange(request, provider, code, entry["verifier"], reauth=reauth)
    claims = validate_id_token(
        provider,
        tokens.get("id_token"),
        nonce=entry["nonce"],
        authenticated_since=entry["at"] if reauth else None,
    )
    if not provider.profile(claims).email_vouched and tokens.get("access_token"):
        # Some providers keep email (or email_verified) out of the ID token.
        claims = _with_userinfo(provider, claims, tokens["access_token"])
    return claims, tokens["id_token"]


def _exchange(request, provider, code: str, verifier: str, *, reauth: bool = False) -> dict:
    doc = metadata.discovery(provider)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri(request, provider),
    }
    if verifier:
        data["code_verifier"] = verifier
    auth = None
    methods = doc.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    if "client_secret_basic" in methods:
        # RFC 6749 §2.3.1: form-encode id and secret before Basic auth.
        auth = HTTPBasicAuth(
            quote(provider.client_id, safe=""), quote(provider.client_secret, safe="")
        )
    else:
        data.update(client_id=provider.client_id, client_secret=provider.client_secret)
    response = metadata.http(
        "POST",
        doc["token_endpoint"],
        provider.name,
        provider_id=provider.id,
        kind="token",
        data=data,
        auth=auth,
        headers={"Accept": "application/json"},
    )
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict):
        body = body if isinstance(body, dict) else {}
        error, description = body.get("error", ""), body.get("error_description", "")
        if error == "invalid_request":
            raise _provider_error(provider, error, "token_error", description, reauth=reauth)
        said = error if isinstance(error, str) and error else f"HTTP {response.status_code}"
        raise provider.fail(
            gettext_noop("the provider refused the sign-in code; it answered: %(answer)s."),
            f"token_error:{printable(error, 40)}",
            printable(description, 200),
            params={"answer": _answer(said, printable(description, 200))},
        )
    return body


def _provider_error(
    provider, error: str, where: str, description="", *, reauth: bool = False
) -> SSOError:
    """The error a provider answered with (RFC 6749 §4.1.2.1, §5.2), as a
    message for the person that says what the provider answered, and a
    reason for the audit trail. `error` comes from the provider, or from
    whoever wrote the callback URL (which also needed this browser's state):
    it is reduced to printable characters, and bounded, before it reaches a
    page or a log line."""
    description = printable(description, 200)
    answered = {"answer": _answer(error, description)}
    if error == "access_denied":
        return provider.fail(
            gettext_noop("sign-in was cancelled."), "idp_access_denied", description
        )
    if error == "invalid_request" and reauth and provider.reauth == "max_age":
        # A re-authentication sends max_age=0, which some providers refuse
        # (glewlwyd 2.7: "max_age invalid"); PKCE worked at the login.
        return provider.fail(
            gettext_noop(
                "the provider refused the request to log in again; it answered: "
                "%(answer)s. An administrator should set %(setting)s=prompt for a "
                "provider that refuses max_age."
            ),
            f"{where}:invalid_request:check_reauth",
            description,
            params={**answered, "setting": f"{provider.env_prefix}REAUTH"},
        )
    if error == "invalid_request":
        # What a provider usually answers to PKCE it refuses (or requires), or
        # to a redirect URI it does not know.
        return provider.fail(
            gettext_noop(
                "the provider refused the sign-in request; it answered: %(answer)s. An "
                "administrator should check PKCE (%(setting)s) and the redirect URI "
                "registered at the provider."
            ),
            f"{where}:invalid_request:check_pkce_and_redirect_uri",
            description,
            params={**answered, "setting": f"{provider.env_prefix}PKCE"},
        )
    reason = f"{where}:{printable(error, 40)}"
    return provider.fail(
        gettext_noop("the provider reported an error; it answered: %(answer)s."),
        reason,
        description,
        params=answered,
    )


def _answer(error, description: str) -> str:
    """What the provider answered, as the page shows it: its error code and
    description, printable and bounded."""
    answer = printable(error, 40)
    if description:
        answer += f" ({printable(description, 120)})"
    return answer


def _with_userinfo(provider, claims: dict, access_token: str) -> dict:
    """Userinfo fills in what the ID token left out; its `sub` must match."""
    doc = metadata.discovery(provider)
    if not doc.get("userinfo_endpoint"):
        return claims
    response = metadata.http(
        "GET",
        doc["userinfo_endpoint"],
        provider.name,
        provider_id=provider.id,
        kind="userinfo",
        headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
    )
    try:
        info = response.json() if response.status_code == 200 else None
    except ValueError:
        info = None
    if not isinstance(info, dict):
        raise provider.fail(gettext_noop("the provider sent no user information."), "userinfo")
    if info.get("sub") != claims["sub"]:
        raise provider.fail(
            gettext_noop("the user information belongs to someone else."), "userinfo_sub"
        )
    merged = dict(info)
    merged.update(claims)  # the signed ID token wins where both speak
    return merged
