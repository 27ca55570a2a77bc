"""What every identity-provider kind has in common.

A kind is a subclass registered by name in `sso.registry.KINDS`; it says
where discovery lives, which issuer a token must carry, and how to read the
person's name and email from the claims.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import urlsplit

from django.urls import reverse
from django.utils.http import urlencode

from sso.errors import SSOError, failed

STRATEGIES = ("pre-registered", "auto-provision")
# No whitespace and no control characters anywhere in an address.
EMAIL_RE = re.compile(r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$")
# How IAM_SSO_<ID>_PKCE may be spelled; anything else is a configuration error.
BOOLEAN_SETTINGS = {
    **dict.fromkeys(("true", "yes", "on", "1"), True),
    **dict.fromkeys(("false", "no", "off", "0"), False),
}
# IAM_SSO_<ID>_REAUTH: how a re-authentication is asked of the provider.
# "max_age": max_age=0 and prompt=login, and the answer's auth_time must be
# fresh (OpenID Connect Core §3.1.2.1). "prompt": prompt=login only, for a
# provider that refuses max_age=0 (glewlwyd: "max_age invalid") or answers
# auth_time 0; an auth_time it does send must still be fresh.
REAUTH_MODES = ("max_age", "prompt")


@dataclass(frozen=True)
class Profile:
    """What the claims say about the person. `email` is the address to show
    and match; `email_vouched` says whether the provider stands behind it,
    and `unvouched_why` names the missing proof for the audit trail."""

    email: str
    first_name: str
    last_name: str
    email_vouched: bool
    unvouched_why: str = ""
    # How the address came to count: "email_verified" (the provider said so)
    # or "trust_email" (the operator trusts this provider's addresses).
    vouched_by: str = ""


class Provider:
    kind = ""
    # Which doors serve it: "oidc" (callback, back- and front-channel logout)
    # or "saml" (sso.saml.views: ACS, SLO, metadata).
    protocol = "oidc"

    def __init__(self, config: dict):
        self.config = config
        self.id: str = config["id"]
        self.name: str = config.get("name") or self.id
        self.client_id: str = config.get("client_id", "")
        self.client_secret: str = config.get("client_secret", "")
        self.scopes: list[str] = config.get("scopes") or ["openid", "email", "profile"]
        self.role_claim: str = config.get("role_claim") or "roles"
        self.strategy: str = config.get("strategy") or "pre-registered"

    @property
    def env_prefix(self) -> str:
        """Where this provider's settings come from (as iam/settings.py reads them)."""
        return f"IAM_SSO_{self.id.upper().replace('-', '_')}_"

    def _flag(self, name: str, default: bool) -> bool:
        value = self.config.get(name, default)
        if isinstance(value, bool):
            return value
        return BOOLEAN_SETTINGS.get(str(value).strip().lower(), default)

    def _flag_error(self, name: str, default: bool) -> str:
        value = self.config.get(name, default)
        if isinstance(value, bool) or str(value).strip().lower() in BOOLEAN_SETTINGS:
            return ""
        return f"{self.env_prefix}{name.upper()} must be true or false"

    @property
    def pkce(self) -> bool:
        """Send PKCE (S256) unless IAM_SSO_<ID>_PKCE says false: on by default,
        since some providers support it without saying so in discovery."""
        return self._flag("pkce", True)

    @property
    def logout(self) -> bool:
        """Log out at the provider too (RP-initiated logout) unless
        IAM_SSO_<ID>_LOGOUT says false."""
        return self._flag("logout", True)

    @property
    def trust_email(self) -> bool:
        """IAM_SSO_<ID>_TRUST_EMAIL (Keycloak's "Trust Email"): an address
        without `email_verified` counts, on the operator's word. Off by
        default; `manage.py check` warns while it is on."""
        return self._flag("trust_email", False)

    @property
    def reauth(self) -> str:
        """IAM_SSO_<ID>_REAUTH: one of REAUTH_MODES (`max_age` by default)."""
        value = str(self.config.get("reauth") or "max_age").strip().lower()
        return value if value in REAUTH_MODES else "max_age"

    @property
    def frontchannel(self) -> bool:
        """Accept OpenID Connect Front-Channel Logout from this provider only
        when IAM_SSO_<ID>_FRONTCHANNEL says true: the call is an anonymous
        cross-site GET that anyone knowing a sid could make."""
        return self._flag("frontchannel", False)

    # --- configuration -------------------------------------------------------

    @cached_property
    def role_map(self) -> dict[str, list[str]]:
        raw = self.config.get("role_map") or "{}"
        data = json.loads(raw) if isinstance(raw, str) else raw
        return {str(role): [str(g) for g in groups] for role, groups in data.items()}

    def config_errors(self) -> list[str]:
        """What is wrong with this provider's settings, in operator words."""
        errors = []
        prefix = self.env_prefix
        if not self.client_id:
            errors.append(f"{prefix}CLIENT_ID is required")
        if self.strategy not in STRATEGIES:
            errors.append(f"{prefix}STRATEGY must be one of {', '.join(STRATEGIES)}")
        if "openid" not in self.scopes:
            errors.append(f"{prefix}SCOPES must include openid")
        for flag, default in (
            ("pkce", True),
            ("logout", True),
            ("trust_email", False),
            ("frontchannel", False),
        ):
            error = self._flag_error(flag, default)
            if error:
                errors.append(error)
        if str(self.config.get("reauth") or "max_age").strip().lower() not in REAUTH_MODES:
            errors.append(f"{prefix}REAUTH must be max_age or prompt")
        try:
            raw = self.config.get("role_map") or "{}"
            data = json.loads(raw) if isinstance(raw, str) else raw
            if not isinstance(data, dict) or not all(
                isinstance(v, list) and all(isinstance(g, str) for g in v) for v in data.values()
            ):
                raise ValueError
        except ValueError:
            errors.append(f'{prefix}ROLE_MAP must be JSON like {{"idp-role": ["group"]}}')
        return errors

    # --- protocol ------------------------------------------------------------

    @property
    def discovery_url(self) -> str:
        raise NotImplementedError

    def check_discovered_issuer(self, issuer) -> None:
        """The discovery document must name the issuer we expect."""
        raise NotImplementedError

    def expected_issuer(self, claims: dict, discovered_issuer: str) -> str:
        """The `iss` this (signature-checked) token must carry."""
        return discovered_issuer

    def form_action_origins(self) -> list[str]:
        """Where the login button's POST may be redirected (CSP form-action):
        the provider's origin, and its authorization endpoint's once known."""
        from django.core.cache import cache

        urls = [self.discovery_url]
        doc = cache.get(f"sso:discovery:{self.id}")
        if doc:
            urls.append(doc.get("authorization_endpoint", ""))
        return origins(urls)

    def begin(self, request, next_url: str = "", reauth_user=None) -> str:
        """Where the login button sends the browser (sso.flows.begin)."""
        from sso import flows

        return flows.begin(request, self, next_url=next_url, reauth_user=reauth_user)

    def logout_url(self, request, extra: dict, state: str) -> str | None:
        """The provider's logout page for this session (RP-initiated logout),
        or None when its discovery names no end_session_endpoint."""
        from sso import metadata

        endpoint = metadata.discovery(self).get("end_session_endpoint")
        if not isinstance(endpoint, str) or not metadata.is_allowed_endpoint(endpoint):
            return None
        query = {
            "client_id": self.client_id,
            "post_logout_redirect_uri": request.build_absolute_uri(reverse("account_login")),
            "state": state,
        }
        if extra.get("id_token"):
            query["id_token_hint"] = extra["id_token"]
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(query)}"

    # What `manage.py sso refresh` says it fetched, and what it counts.
    refreshed_words = ("discovery and keys", "key")

    def refresh(self) -> int:
        """Fetch discovery and keys again now; how many keys there are."""
        from sso import metadata

        _doc, keys = metadata.refresh(self)
        return len(keys["keys"])

    def session_extra(self, claims: dict) -> dict:
        """What else a login through this provider keeps in its session."""
        return {}

    def login_url(self) -> str:
        return reverse("sso:login", kwargs={"provider_id": self.id})

    def callback_path(self) -> str:
        return reverse("sso:callback", kwargs={"provider_id": self.id})

    def reauthenticate_url(self) -> str:
        return reverse("sso:reauthenticate", kwargs={"provider_id": self.id})

    # --- claims --------------------------------------------------------------

    def profile(self, claims: dict) -> Profile:
        """OpenID Connect Core §5.1: an address counts only when the provider
        says `email_verified` is true. Missing, false or anything else is no
        proof: the person may have typed someone else's address there.
        With TRUST_EMAIL the operator vouches instead, where the provider
        says nothing about it (no `email_verified`, or null); a provider that
        says the address is not verified is still believed."""
        email = address(claims.get("email"))
        vouched_by = ""
        if email and is_true(claims.get("email_verified")):
            vouched_by = "email_verified"
        elif email and self.trust_email and claims.get("email_verified") is None:
            vouched_by = "trust_email"
        first, last = names(claims, email)
        return Profile(
            email=email,
            first_name=first,
            last_name=last,
            email_vouched=bool(vouched_by),
            unvouched_why="" if vouched_by else "email_verified_not_true",
            vouched_by=vouched_by,
        )

    def link_extras(self, claims: dict) -> dict:
        return {}

    def roles(self, claims: dict) -> list[str]:
        """The roles in ROLE_CLAIM: a JSON list, or one string holding one role
        or several separated by spaces or commas (as some providers send)."""
        value = claims.get(self.role_claim)
        if isinstance(value, str):
            value = ROLE_SEPARATORS.split(value)
        if not isinstance(value, list):
            return []
        roles = [v for v in value if isinstance(v, str) or type(v) is int]
        return [str(v).strip() for v in roles if str(v).strip()]

    def fail(
        self, message: str, reason: str, detail: str = "", params: dict | None = None
    ) -> SSOError:
        return failed(self.name, message, reason, detail, params)


ROLE_SEPARATORS = re.compile(r"[\s,]+")


def origins(urls) -> list[str]:
    """The distinct http(s) origins of `urls` (CSP form-action sources)."""
    found = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.netloc:
            found.append(f"{parts.scheme}://{parts.netloc}")
    return list(dict.fromkeys(found))


def is_true(value) -> bool:
    """A JSON true, or the string "true" that some providers send instead."""
    return value is True or value == "true"


def address(value) -> str:
    """The claim as an email address, in the one canonical form accounts are
    looked up by (accounts.models.normalize_email), or "" when it is not one."""
    from accounts.models import normalize_email

    if not isinstance(value, str) or not EMAIL_RE.match(value.strip()):
        return ""
    return normalize_email(value)


def names(claims: dict, email: str) -> tuple[str, str]:
    """First and last name: `given_name` / `family_name`, else the standard
    `name` split at its first space ("Erin Evans"), else the email's local
    part and "-" (a provider that sends only `name` must not become "erin -")."""
    full = _text(claims.get("name")).split(None, 1)
    first = _text(claims.get("given_name")) or (full[0] if full else "") or email.split("@")[0]
    last = _text(claims.get("family_name")) or (full[1] if len(full) > 1 else "") or "-"
    return first, last


def _text(value, limit: int = 150) -> str:
    """A claim as display text: control characters dropped, trimmed, bounded."""
    if not isinstance(value, str):
        return ""
    return "".join(c for c in value if c.isprintable()).strip()[:limit]
