"""Start-up check of the IAM_SSO_* configuration: a wrong value is a clear
error from `manage.py check` (and every command), not a failed login later."""

from django.conf import settings
from django.core.checks import Error, Warning, register

from sso.metadata import is_allowed_endpoint
from sso.registry import KINDS, providers


@register()
def sso_configuration(app_configs, **kwargs):
    problems = []
    for pid, config in settings.IAM_SSO_PROVIDERS.items():
        if config.get("kind") not in KINDS:
            problems.append(
                Error(
                    f"IAM_SSO_{pid.upper()}_KIND must be one of {', '.join(sorted(KINDS))}.",
                    id="sso.E001",
                )
            )
    for provider in providers().values():
        for message in provider.config_errors():
            problems.append(Error(message + ".", id="sso.E002"))
        url = provider.discovery_url
        if not is_allowed_endpoint(url):
            problems.append(
                Error(
                    f"{provider.name}: discovery URL {url} must be https "
                    "(plain http only on loopback).",
                    id="sso.E003",
                )
            )
    return problems


@register()
def sso_role_map_groups(app_configs, databases=None, **kwargs):
    """Groups named in ROLE_MAP should exist; a missing one is skipped at login."""
    if not databases:
        return []
    from django.db import DatabaseError

    from accounts.models import Group

    warnings = []
    try:
        existing = set(Group.objects.values_list("name", flat=True))
    except DatabaseError:
        return []
    for provider in providers().values():
        if provider.config_errors():
            continue
        for role, groups in provider.role_map.items():
            for name in groups:
                if name not in existing:
                    warnings.append(
                        Warning(
                            f"{provider.name}: ROLE_MAP maps {role!r} to unknown group {name!r}.",
                            id="sso.W001",
                        )
                    )
    return warnings
