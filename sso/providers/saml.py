"""A SAML 2.0 identity provider (AD FS, Entra ID's SAML apps, Okta,
Shibboleth, SimpleSAMLphp), behind the same button, strategies, ROLE_MAP,
MFA rules, audit and single logout as the OpenID Connect kinds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.utils.translation import gettext_noop

from sso.metadata import is_allowed_endpoint
from sso.providers.base import Profile, Provider, origins
from sso.saml import flow, idp, logout, sp


class SAMLProvider(Provider):
    kind = "saml"
    protocol = "saml"

    def __init__(self, config: dict):
        super().__init__(config)
        # The roles come from an attribute, read into a claim of their own
        # (sso.saml.response.ROLES) that base.Provider.roles reads.
        self.role_attribute: str = config.get("role_attribute") or "Role"
        self.role_claim = "saml_roles"
        self.metadata_source: str = (config.get("metadata") or "").strip()
        self.sp_cert: str = config.get("sp_cert") or ""
        self.sp_key: str = config.get("sp_key") or ""
        self.entity_id: str = config.get("entity_id") or ""

    @property
    def idp_initiated(self) -> bool:
        """Accept an unsolicited (IdP-initiated) response only when
        IAM_SSO_<ID>_IDP_INITIATED says true: nothing then ties the answer
        to this browser (anyone could log a victim into their own account)."""
        return self._flag("idp_initiated", False)

    @property
    def discovery_url(self) -> str:
        return ""  # no OpenID discovery: the metadata (sso.saml.idp) says it all

    def config_errors(self) -> list[str]:
        prefix = self.env_prefix
        errors = [
            e
            for e in super().config_errors()
            if not e.startswith((f"{prefix}CLIENT_ID", f"{prefix}SCOPES"))
        ]
        error = self._flag_error("idp_initiated", False)
        if error:
            errors.append(error)
        source = self.metadata_source
        if not source:
            errors.append(f"{prefix}METADATA is required for kind saml (a URL or a file)")
        elif idp.is_url(source) and not is_allowed_endpoint(source):
            errors.append(f"{prefix}METADATA must be https (plain http only on loopback)")
        try:
            sp.key_and_cert(self)
        except sp.UnusableKey as why:
            errors.append(f"{prefix}{why}")
        return errors

    def signing_key(self):
        """(our private key, our certificate); SSOError when unusable."""
        try:
            return sp.key_and_cert(self)
        except sp.UnusableKey:
            raise self.fail(
                gettext_noop("the service is misconfigured: its SAML signing key is missing."),
                "sp_key",
            ) from None

    def certificate_expiry(self) -> datetime | None:
        try:
            _key, cert = sp.key_and_cert(self)
        except sp.UnusableKey:
            return None
        return cert.not_valid_after_utc

    def expires_soon(self, days: int = 30) -> bool:
        expiry = self.certificate_expiry()
        return expiry is not None and expiry < datetime.now(UTC) + timedelta(days=days)

    def form_action_origins(self) -> list[str]:
        """The IdP's single sign-on service (where the login button's POST is
        redirected) and the metadata URL's origin."""
        urls = [self.metadata_source if idp.is_url(self.metadata_source) else ""]
        found = idp.cached(self)
        if found:
            urls.append(found["sso_url"])
        return origins(urls)

    # --- the doors sso.views and sso.logout go through ------------------------

    def begin(self, request, next_url: str = "", reauth_user=None) -> str:
        return flow.begin(request, self, next_url=next_url, reauth_user=reauth_user)

    def logout_url(self, request, extra: dict, state: str) -> str | None:
        return logout.request_url(request, self, extra, state)

    refreshed_words = ("metadata", "signing certificate")

    def refresh(self) -> int:
        return len(idp.refresh(self)["certs"])

    def session_extra(self, claims: dict) -> dict:
        return {"name_id": claims.get("saml_name_id") or {}}

    # --- claims ------------------------------------------------------------------

    def profile(self, claims: dict) -> Profile:
        """SAML says nothing like `email_verified`: an address counts only
        on the operator's word (IAM_SSO_<ID>_TRUST_EMAIL), the same rule as
        an OpenID provider that does not say."""
        profile = super().profile({**claims, "email_verified": None})
        if profile.email_vouched:
            return profile
        return Profile(
            email=profile.email,
            first_name=profile.first_name,
            last_name=profile.last_name,
            email_vouched=False,
            unvouched_why="saml_without_trust_email",
        )
