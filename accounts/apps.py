from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from accounts import checks, receivers  # noqa: F401  (checks register themselves)

        receivers.connect()

        from iam import logs

        logs.connect()  # a request id per worker task
