"""The webhook's settings, checked when any command starts (the worker, which
delivers, among them): one clear line and exit 1, not a traceback."""

from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured


@register()
def webhook_settings(app_configs, **kwargs):
    from stream.webhook import check_settings

    try:
        check_settings()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="stream.E001")]
    return []
