from django.apps import AppConfig


class SsoConfig(AppConfig):
    name = "sso"
    verbose_name = "Single sign-on"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from accounts.services import register_configured_group_names
        from sso import checks  # noqa: F401  (registers the configuration check)
        from sso.registry import role_map_group_names

        # Groups a ROLE_MAP names keep their names (accounts.services).
        register_configured_group_names(role_map_group_names)
