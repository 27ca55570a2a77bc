from django.apps import AppConfig


class MaintenanceConfig(AppConfig):
    name = "maintenance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from maintenance import checks  # noqa: F401  (registers the schedule check)
