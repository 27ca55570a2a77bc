from django.apps import AppConfig


class SsoConfig(AppConfig):
    name = "sso"
    verbose_name = "Single sign-on"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from allauth.account.signals import user_logged_in

        from accounts.extensions import registry
        from sso import (
            checks,  # noqa: F401  (registers the configuration check)
            logout,
            sessions,
        )
        from sso.reauth import with_sso_method
        from sso.registry import login_options, role_map_group_names, role_map_references
        from sso.services import address_manager, is_sso_only

        # What accounts asks of identity providers (accounts.extensions).
        registry.login_options.append(login_options)
        registry.reauthentication_methods.append(with_sso_method)
        registry.no_self_service_password.append(is_sso_only)
        registry.address_managers.append(address_manager)
        registry.configured_group_names.append(role_map_group_names)
        registry.access_references.append(role_map_references)
        registry.logout_redirects.append(logout.redirect_after_logout)
        registry.login_page_notices.append(logout.login_page_notices)
        # After the MFA step: a proven link is made, mapped groups applied.
        registry.login_stages.append("sso.stages.CompleteSsoLogin")
        # A session that came in through a provider is listed with its
        # provider session id, for single logout (sso.sessions).
        user_logged_in.connect(sessions.record, dispatch_uid="sso.sessions.record")
