"""`manage.py sso refresh [ID]`: identity providers' discovery and keys,
fetched again now.

Both are cached for an hour (sso.metadata), in the shared cache when
CACHE_URL is Redis. After a change at the provider (an endpoint moved, keys
rotated more than once within a minute) an operator refreshes them instead
of waiting: one line per provider; a provider that cannot be refreshed keeps
what was cached and makes the exit status 1, as does an unknown id.
"""

import logging

from django.conf import settings
from django.core.management.base import CommandError

from accounts.audit import Actor, AuditAction, audit
from iam import commands as base
from sso.errors import SSOError, printable
from sso.registry import providers

logger = logging.getLogger("iam.sso")


class Command(base.Command):
    help = "Identity providers: `refresh [ID]` fetches their discovery and keys again now."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        refresh = sub.add_parser(
            "refresh", help="Fetch discovery and keys again now (every provider, or ID)."
        )
        refresh.add_argument("provider_id", nargs="?", default="")

    def handle(self, *args, action, **options):
        getattr(self, f"_{action}")(**options)

    def _refresh(self, *, provider_id="", **_):
        configured = providers()
        if provider_id:
            if provider_id not in configured:
                named = ", ".join(configured) or "none"
                raise CommandError(
                    f"unknown identity provider {printable(provider_id)!r} (configured: {named})"
                )
            chosen = [configured[provider_id]]
        else:
            chosen = list(configured.values())
        if not chosen:
            self.stdout.write("No identity provider is configured (IAM_SSO_PROVIDERS).")
            return
        failures = []
        for provider in chosen:
            try:
                count = provider.refresh()
            except SSOError as error:
                failures.append(f"{provider.id}: not refreshed: {error.message} ({error.reason})")
                continue
            logger.info("sso %s: discovery and keys fetched again by the operator", provider.id)
            # The keys every ID and logout token is checked against changed.
            audit(
                AuditAction.SSO_METADATA_REFRESHED,
                by=Actor.system(label="cli"),
                target_label=provider.id,
                details={"keys": count},
            )
            what, unit = provider.refreshed_words
            self.stdout.write(
                f"{provider.id}: {what} fetched again ({count} {unit}{'' if count == 1 else 's'})"
            )
        if not settings.CACHE_IS_SHARED:
            self.stderr.write(
                "Note: the cache is this process's own memory (CACHE_URL is not shared): "
                "running servers keep their copies for up to an hour, or until restarted."
            )
        if failures:
            raise CommandError("; ".join(failures))
