"""The OpenAPI document's security scheme: a bearer token from /oauth/token/."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.BearerTokenAuthentication"
    name = "bearer"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "An access token from POST /oauth/token/ (see "
                "/.well-known/oauth-authorization-server)."
            ),
        }
