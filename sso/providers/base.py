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

from sso.errors import SSOError

STRATEGIES = ("pre-registered", "auto-provision")
EMAIL_RE = re.compile(r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$")


@dataclass(frozen=True)
class Profile:
    email: str
    first_name: str
    last_name: str
    email_vouched: bool


class Provider:
    kind = ""

    def __init__(self, config: dict):
        self.config = config
        self.id: str = config["id"]
        self.name: str = config.get("name") or self.id
        self.client_id: str = config.get("client_id", "")
        self.client_secret: str = config.get("client_secret", "")
        self.scopes: list[str] = config.get("scopes") or ["openid", "email", "profile"]
        self.role_claim: str = config.get("role_claim") or "roles"
        self.strategy: str = config.get("strategy") or "pre-registered"

    # --- configuration -------------------------------------------------------

    @cached_property
    def role_map(self) -> dict[str, list[str]]:
        raw = self.config.get("role_map") or "{}"
        data = json.loads(raw) if isinstance(raw, str) else raw
        return {str(role): [str(g) for g in groups] for role, groups in data.items()}

    def config_errors(self) -> list[str]:
        """What is wrong with this provider's settings, in operator words."""
        errors = []
        prefix = f"IAM_SSO_{self.id.upper()}_"
        if not self.client_id:
            errors.append(f"{prefix}CLIENT_ID is required")
        if self.strategy not in STRATEGIES:
            errors.append(f"{prefix}STRATEGY must be one of {', '.join(STRATEGIES)}")
        if "openid" not in self.scopes:
            errors.append(f"{prefix}SCOPES must include openid")
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
        origins = []
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme in ("http", "https") and parts.netloc:
                origins.append(f"{parts.scheme}://{parts.netloc}")
        return list(dict.fromkeys(origins))

    def login_url(self) -> str:
        return reverse("sso:login", kwargs={"provider_id": self.id})

    def callback_path(self) -> str:
        return reverse("sso:callback", kwargs={"provider_id": self.id})

    # --- claims --------------------------------------------------------------

    def profile(self, claims: dict) -> Profile:
        email = claims.get("email")
        email = email.strip().lower() if isinstance(email, str) and EMAIL_RE.match(email) else ""
        return Profile(
            email=email,
            first_name=_text(claims.get("given_name")),
            last_name=_text(claims.get("family_name")),
            email_vouched=bool(email) and claims.get("email_verified") is not False,
        )

    def link_extras(self, claims: dict) -> dict:
        return {}

    def roles(self, claims: dict) -> list[str]:
        value = claims.get(self.role_claim)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            return []
        return [str(v) for v in value if isinstance(v, str | int)]

    def fail(self, message: str, reason: str) -> SSOError:
        return SSOError(f"Log in with {self.name} failed: {message}", reason)


def _text(value, limit: int = 150) -> str:
    return value.replace("\x00", "").strip()[:limit] if isinstance(value, str) else ""
