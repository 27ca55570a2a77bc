from django.apps import AppConfig


class StreamConfig(AppConfig):
    name = "stream"

    def ready(self):
        from accounts import audit
        from stream import checks  # noqa: F401  (registers the webhook's settings check)
        from stream.listener import STREAM

        audit.listen(STREAM)
