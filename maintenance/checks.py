"""Start-up check: a wrong IAM_MAINTENANCE_EVERY is a clear error from
`manage.py check` and every command (the worker's too), not a silent
schedule of nothing."""

from django.conf import settings
from django.core.checks import Error, register

from maintenance.schedule import parse_every


@register()
def maintenance_schedule(app_configs, **kwargs):
    try:
        parse_every(settings.IAM_MAINTENANCE_EVERY)
    except ValueError as exc:
        return [Error(str(exc), id="maintenance.E001")]
    return []
