"""Any standards-compliant OpenID provider (Keycloak, Okta, Google, …)."""

from sso.errors import SSOError
from sso.providers.base import Provider


class OIDCProvider(Provider):
    kind = "oidc"

    @property
    def issuer(self) -> str:
        return self.config.get("issuer", "")

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    def config_errors(self) -> list[str]:
        errors = super().config_errors()
        if not self.issuer:
            errors.append(f"IAM_SSO_{self.id.upper()}_ISSUER is required for kind oidc")
        return errors

    def check_discovered_issuer(self, issuer) -> None:
        # OpenID Connect Discovery 1.0 §4.3: exactly the issuer we asked.
        if issuer != self.issuer:
            raise SSOError(
                f"{self.name} is misconfigured: its discovery names issuer {issuer!r}, "
                f"not {self.issuer!r}.",
                "issuer_mismatch",
            )
