from django.apps import AppConfig


class StreamConfig(AppConfig):
    name = "stream"

    def ready(self):
        from accounts import audit
        from stream import webhook
        from stream.listener import STREAM

        webhook.check_settings()  # a bad URL or short secret stops the start
        audit.listen(STREAM)
