from django.apps import AppConfig


class ScimConfig(AppConfig):
    """SCIM 2.0 provisioning (RFC 7643/7644) at /scim/v2/: identity providers
    (Entra ID, Okta, Keycloak) create, update, block and delete accounts and
    their mapped groups, each as one provisioning client with its own token."""

    name = "scim"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from accounts.extensions import registry
        from scim import services

        # Groups a client's map or ceiling names keep their names; an account
        # a client provisioned without a password logs in by SSO only.
        registry.configured_group_names.append(services.mapped_group_names)
        registry.access_references.append(services.mapped_group_references)
        registry.no_self_service_password.append(services.no_self_service_password)
        # The addresses of its accounts follow the provider, not the screens.
        registry.address_managers.append(services.address_manager)
