"""Deployment checks of our own, run by `manage.py check --deploy`."""

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def dev_secret_key_refused(app_configs, **kwargs):
    """The built-in dev key is public (it is in the repository): refuse it
    outright when DEBUG is off, rather than Django's mere warning."""
    from iam.settings import DEV_SECRET_KEY

    if not settings.DEBUG and settings.SECRET_KEY == DEV_SECRET_KEY:
        return [
            Error(
                "DJANGO_SECRET_KEY is not set: the development key must not run in production.",
                hint="Set DJANGO_SECRET_KEY to a long random value (50+ characters).",
                id="iam.E001",
            )
        ]
    return []
