"""Provider kinds by name, and the providers configured in IAM_SSO_*.

A new kind is one module with a Provider subclass plus one line here.
"""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.core.signals import setting_changed

from sso.providers.azure import AzureProvider
from sso.providers.base import Provider
from sso.providers.oidc import OIDCProvider
from sso.providers.saml import SAMLProvider

KINDS: dict[str, type[Provider]] = {
    AzureProvider.kind: AzureProvider,
    OIDCProvider.kind: OIDCProvider,
    SAMLProvider.kind: SAMLProvider,
}


@cache
def providers() -> dict[str, Provider]:
    """The configured providers whose kind exists, in configuration order."""
    return {
        pid: KINDS[config["kind"]](config)
        for pid, config in settings.IAM_SSO_PROVIDERS.items()
        if config.get("kind") in KINDS
    }


def get_provider(provider_id: str) -> Provider | None:
    return providers().get(provider_id)


def _forget(setting, **kwargs):
    if setting == "IAM_SSO_PROVIDERS":
        providers.cache_clear()


setting_changed.connect(_forget)


def role_map_group_names() -> set[str]:
    """Every group a configured ROLE_MAP names (a malformed map names none;
    `manage.py check` reports it)."""
    names = set()
    for provider in providers().values():
        try:
            names.update(g for groups in provider.role_map.values() for g in groups)
        except (ValueError, TypeError, AttributeError):
            continue
    return names


def role_map_references() -> dict:
    """Each provider's ROLE_MAP as `access export` shows it (read-only: the
    environment owns it), in a stable order; a malformed map shows as {}."""
    maps = {}
    for pid, provider in sorted(providers().items()):
        try:
            role_map = provider.role_map
        except (ValueError, TypeError, AttributeError):
            role_map = {}
        maps[pid] = {role: sorted(groups) for role, groups in sorted(role_map.items())}
    return {"sso_role_maps": maps}


def login_options() -> list:
    """One "Log in with <NAME>" button per provider (accounts.extensions)."""
    from accounts.extensions import LoginOption

    return [
        LoginOption(name=p.name, url=p.login_url(), origins=tuple(p.form_action_origins()))
        for p in providers().values()
    ]
