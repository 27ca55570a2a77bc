from django.apps import AppConfig


class TrailConfig(AppConfig):
    """The audit trail's tamper evidence (seals) and retention (archive)."""

    name = "trail"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from trail import checks, jobs  # noqa: F401  (registers the checks and the maintenance jobs)
