"""Start-up check of the IAM_SSO_* configuration: a wrong value is a clear
error from `manage.py check` (and every command), not a failed login later."""

from django.conf import settings
from django.core.checks import Error, Warning, register

from sso import metadata
from sso.errors import SSOError, printable
from sso.metadata import is_allowed_endpoint
from sso.registry import KINDS, providers


@register()
def sso_configuration(app_configs, **kwargs):
    problems = []
    for pid, config in settings.IAM_SSO_PROVIDERS.items():
        if config.get("kind") not in KINDS:
            problems.append(
                Error(
                    f"IAM_SSO_{pid.upper().replace('-', '_')}_KIND must be one of "
                    f"{', '.join(sorted(KINDS))}.",
                    id="sso.E001",
                )
            )
    for provider in providers().values():
        for message in provider.config_errors():
            problems.append(Error(message + ".", id="sso.E002"))
        url = provider.discovery_url
        # A SAML provider has no discovery URL: its METADATA is checked in
        # config_errors (sso.E002).
        if url and not is_allowed_endpoint(url):
            problems.append(
                Error(
                    f"{provider.name}: discovery URL {url} must be https "
                    "(plain http only on loopback).",
                    id="sso.E003",
                )
            )
    return problems


@register()
def sso_trust_email(app_configs, **kwargs):
    """TRUST_EMAIL takes the provider's word for every address it sends:
    worth a warning each time the configuration is checked."""
    return [
        Warning(
            f"{provider.name}: {provider.env_prefix}TRUST_EMAIL is on: its e-mail addresses "
            "are believed without email_verified, for linking to existing accounts too.",
            hint="Turn it on only for a provider whose every address is verified by its "
            "operator (Keycloak's Trust Email); whoever can set an address there can log in "
            "as the account that holds it.",
            id="sso.W002",
        )
        for provider in providers().values()
        if provider.trust_email and not provider.config_errors()
    ]


@register()
def sso_role_map_groups(app_configs, **kwargs):
    """Groups named in ROLE_MAP should exist: a missing one is skipped at
    login, so its role silently grants nothing. Looked up whenever the
    database answers, in a plain `manage.py check` too (Django's `databases`
    argument is empty there); quietly skipped when it does not answer or has
    no tables yet (a build step, `migrate` on a fresh install)."""
    from django.db import DatabaseError

    from accounts.models import Group

    mapped = [
        (provider, role, name)
        for provider in providers().values()
        if not provider.config_errors()
        for role, groups in provider.role_map.items()
        for name in groups
    ]
    if not mapped:
        return []
    try:
        names = {name for _, _, name in mapped}
        existing = set(Group.objects.filter(name__in=names).values_list("name", flat=True))
    except DatabaseError:
        return []
    return [
        Warning(
            f"{provider.name}: {provider.env_prefix}ROLE_MAP maps {role!r} to group {name!r}, "
            "which does not exist.",
            hint="Create the group, or correct its name in ROLE_MAP.",
            id="sso.W001",
        )
        for provider, role, name in mapped
        if name not in existing
    ]


@register()
def sso_issuer_as_discovered(app_configs, **kwargs):
    """An issuer written with a trailing slash that the provider's discovery
    does not name fails every login (OpenID Connect Discovery §4.3 compares
    issuers exactly, and the discovery URL is the same either way). Only
    then is discovery asked, so other commands make no request; a provider
    that does not answer is not reported here (its logins will say so)."""
    problems = []
    for provider in providers().values():
        issuer = getattr(provider, "issuer", "")
        if not issuer.endswith("/") or provider.config_errors():
            continue
        if not is_allowed_endpoint(provider.discovery_url):
            continue
        try:
            named = metadata.discovery_document(provider).get("issuer")
        except SSOError:
            continue
        if named != issuer:
            problems.append(
                Error(
                    f"{provider.name}: {provider.env_prefix}ISSUER is {issuer!r}, but its "
                    f"discovery document names issuer {_shown(named)}.",
                    hint=f"Set {provider.env_prefix}ISSUER to exactly what discovery names.",
                    id="sso.E004",
                )
            )
    return problems


def _shown(value) -> str:
    """A provider's value in an operator's terminal: quoted, no escape codes."""
    return repr(printable(value)) if isinstance(value, str) else "none"


@register()
def sso_saml_metadata(app_configs, **kwargs):
    """A SAML provider's metadata must be readable and usable, and our
    signing certificate should not be about to expire. A metadata file that
    cannot be read is an error (every login would fail); a URL that does not
    answer now is a warning (the IdP may be down for a moment, and commands
    should still run). The project's own commands run these checks too, but
    ask no URL (iam.commands.offline_checks), as sso.E004."""
    from iam.commands import offline_checks
    from sso.saml import idp

    problems = []
    for provider in providers().values():
        if provider.protocol != "saml" or provider.config_errors():
            continue
        if idp.is_url(provider.metadata_source) and offline_checks.get():
            continue
        try:
            idp.refresh(provider)
        except SSOError as error:
            is_file = not idp.is_url(provider.metadata_source)
            problems.append(
                (Error if is_file else Warning)(
                    f"{provider.name}: {provider.env_prefix}METADATA "
                    f"({_shown(provider.metadata_source)}) cannot be used: {error.message}",
                    hint="Give the IdP's metadata URL or a copy of its metadata file.",
                    id="sso.E005" if is_file else "sso.W003",
                )
            )
        if provider.expires_soon():
            expiry = provider.certificate_expiry()
            problems.append(
                Warning(
                    f"{provider.name}: {provider.env_prefix}SP_CERT expires on {expiry:%Y-%m-%d}.",
                    hint="Make a new key and certificate, give the IdP our new metadata, "
                    "then switch SP_KEY and SP_CERT.",
                    id="sso.W004",
                )
            )
    return problems
