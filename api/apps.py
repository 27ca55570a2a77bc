from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The Back Office API: an OAuth 2.0 authorization server for Back Office
    accounts (django-oauth-toolkit) and a JSON API under the same access
    rules as the screens (Django REST framework)."""

    name = "api"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from accounts.extensions import registry
        from api import selectors, services

        # Tokens die with the account's sessions, in the same write.
        registry.account_disabled.append(services.tokens_revoke_for_account)
        registry.credentials_replaced.append(services.tokens_revoke_for_account)
        # A service account's address belongs to its client.
        registry.address_managers.append(selectors.service_address_manager)
        # ... and its secret's holder caps what it asked for, when carried out.
        registry.cap_holders.append(selectors.service_cap_holder)
        # A login that goes on to an approved client's redirect URI.
        from api.oauth.login_redirects import origins_after_login

        registry.login_redirect_origins.append(origins_after_login)
