"""Microsoft Entra ID (Azure AD), v2.0 endpoints.

Single-tenant: TENANT is the tenant id and tokens must come from it.
Multi-tenant (`organizations`, `common`, or a domain name): the discovery
issuer is a template `…/{tenantid}/v2.0`; the token's own `tid` fills it in
and must be one of ALLOWED_TENANTS.
"""

import re

from django.utils.translation import gettext_noop

from sso.errors import printable
from sso.providers.base import Profile, Provider, _text, address, names

ADDRESS_CLAIMS = ("email", "preferred_username", "upn")
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


class AzureProvider(Provider):
    kind = "azure"

    @property
    def tenant(self) -> str:
        return self.config.get("tenant", "")

    @property
    def authority(self) -> str:
        return (self.config.get("authority") or "https://login.microsoftonline.com").rstrip("/")

    @property
    def allowed_tenants(self) -> set[str]:
        if GUID.match(self.tenant):
            return {self.tenant.lower()}
        return {t.strip().lower() for t in self.config.get("allowed_tenants") or [] if t.strip()}

    @property
    def discovery_url(self) -> str:
        return f"{self.authority}/{self.tenant}/v2.0/.well-known/openid-configuration"

    def config_errors(self) -> list[str]:
        errors = super().config_errors()
        prefix = self.env_prefix
        if not self.tenant:
            errors.append(f"{prefix}TENANT is required for kind azure")
        elif not GUID.match(self.tenant) and not self.allowed_tenants:
            errors.append(
                f"{prefix}ALLOWED_TENANTS is required when {prefix}TENANT is not a tenant id"
            )
        if self.trust_email:
            errors.append(
                f"{prefix}TRUST_EMAIL is not available for kind azure: any tenant's admin can "
                "set Entra's email to anyone's address (nOAuth); Entra vouches through "
                "xms_edov and the sign-in name instead"
            )
        bad = [t for t in self.allowed_tenants if not GUID.match(t)]
        if bad:
            errors.append(f"{prefix}ALLOWED_TENANTS must be tenant ids (GUIDs): {', '.join(bad)}")
        return errors

    def check_discovered_issuer(self, issuer) -> None:
        if not isinstance(issuer, str) or not issuer.startswith(self.authority.split("//")[0]):
            raise self.fail(
                gettext_noop("the provider is misconfigured: no usable issuer."), "issuer_mismatch"
            )
        if GUID.match(self.tenant) and self.tenant.lower() not in issuer.lower():
            raise self.fail(
                f"the provider is misconfigured: discovery issuer {printable(issuer)!r} is not "
                f"tenant {self.tenant}.",
                "issuer_mismatch",
            )

    def expected_issuer(self, claims: dict, discovered_issuer: str) -> str:
        tid = claims.get("tid")
        if not isinstance(tid, str) or tid.lower() not in self.allowed_tenants:
            raise self.fail(
                gettext_noop("your organisation (tenant) is not allowed here."),
                "tenant_not_allowed",
            )
        return discovered_issuer.replace("{tenantid}", tid)

    def profile(self, claims: dict) -> Profile:
        """nOAuth: Entra's `email` is the user's mail attribute, which any admin
        of any tenant can set to anyone's address. An address counts only when
        Entra vouches for it: `email` with the optional claim `xms_edov` (the
        domain owner verified it), or the sign-in name (`preferred_username`,
        `upn`) of a member of the tenant, whose domain the tenant has verified.
        A guest or a personal Microsoft account (an `idp` naming another
        authority than the issuer) has no trusted address here."""
        trusted, why = _trusted_address(claims)
        candidates = (address(claims.get(claim)) for claim in ADDRESS_CLAIMS)
        shown = trusted or next(filter(None, candidates), "")
        first, last = names(claims, shown)
        return Profile(
            email=shown,
            first_name=first,
            last_name=last,
            email_vouched=bool(trusted),
            unvouched_why=why,
            vouched_by="entra" if trusted else "",
        )

    def link_extras(self, claims: dict) -> dict:
        return {"oid": _text(claims.get("oid"), 64), "tid": _text(claims.get("tid"), 64)}


def _trusted_address(claims: dict) -> tuple[str, str]:
    """The address Entra vouches for, or "" and why there is none."""
    idp = claims.get("idp")
    if idp is not None and idp != claims.get("iss"):
        return "", "entra_guest_or_personal_account"
    email = address(claims.get("email"))
    if email and _edov(claims.get("xms_edov")):
        return email, ""
    for claim in ("preferred_username", "upn"):
        sign_in_name = address(claims.get(claim))
        if sign_in_name:
            return sign_in_name, ""
    return "", "entra_email_without_xms_edov" if email else "entra_no_address"


def _edov(value) -> bool:
    """xms_edov is documented as a boolean; Entra has been seen sending it as
    true or as "1" (and "true"). Nothing else counts."""
    return value is True or value in ("true", "1") or (type(value) is int and value == 1)
