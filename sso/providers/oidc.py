"""Any standards-compliant OpenID provider (Keycloak, Okta, Google, …)."""

from sso.errors import printable
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
            errors.append(f"{self.env_prefix}ISSUER is required for kind oidc")
        return errors

    def check_discovered_issuer(self, issuer) -> None:
        # OpenID Connect Discovery 1.0 §4.3: exactly the issuer we asked.
        if issuer != self.issuer:
            raise self.fail(
                f"the provider is misconfigured: its discovery names issuer "
                f"{printable(issuer)!r}, not {self.issuer!r}.",
                "issuer_mismatch",
            )
