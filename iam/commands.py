"""The base of this project's management commands.

Each run of one of them is filed under a request id of its own (an outer
command's id is kept by the commands it calls), so its audit events and log
lines say which run wrote them (iam.logs, accounts.audit). A base class
rather than a patch of Django's BaseCommand: explicit, and only for the
commands that act on the access model.
"""

from __future__ import annotations

from contextvars import ContextVar

from django.core.management.base import BaseCommand

from iam.logs import current_actor, current_request_id, new_request_id

# True while one of these commands runs its start-up system checks: checks
# that would call out (an IdP's SAML metadata URL) leave that to
# `manage.py check`, so a cron'd command makes no request and an IdP that is
# down neither slows nor clutters it.
offline_checks: ContextVar[bool] = ContextVar("offline_checks", default=False)


class Command(BaseCommand):
    def check(self, *args, **kwargs):
        token = offline_checks.set(True)
        try:
            return super().check(*args, **kwargs)
        finally:
            offline_checks.reset(token)

    def execute(self, *args, **options):
        if current_request_id.get():
            return super().execute(*args, **options)
        token = current_request_id.set(new_request_id())
        actor = current_actor.set(f"cli:{type(self).__module__.rsplit('.', 1)[-1]}")
        try:
            return super().execute(*args, **options)
        finally:
            current_actor.reset(actor)
            current_request_id.reset(token)
