"""Deployment checks of our own, run by `manage.py check --deploy`."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


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


@register(Tags.caches, deploy=True)
def shared_cache_in_production(app_configs, **kwargs):
    """Production runs several app server processes (granian workers,
    hosts): rate limits, compiled access rules and session reads must be in
    a cache they all share."""
    if not settings.DEBUG and not settings.CACHE_IS_SHARED:
        return [
            Warning(
                "CACHE_URL is a per-process cache: each app server process would count "
                "failed logins and cache access rules on its own.",
                hint="Set CACHE_URL=redis://<host>:6379/0 in production.",
                id="iam.W002",
            )
        ]
    return []


@register(Tags.database)
def sqlite_serialises_writes(app_configs, **kwargs):
    """Access writes rely on SQLite transactions beginning IMMEDIATE (the
    lock accounts.delegation takes on PostgreSQL); without it two of them
    could both pass the root invariant."""
    return [
        Error(
            f"DATABASES[{alias!r}] is SQLite without transaction_mode IMMEDIATE.",
            hint="Keep the OPTIONS iam/settings.py sets for SQLite.",
            id="iam.E003",
        )
        for alias, config in settings.DATABASES.items()
        if config["ENGINE"].endswith("sqlite3")
        and config.get("OPTIONS", {}).get("transaction_mode") != "IMMEDIATE"
    ]
