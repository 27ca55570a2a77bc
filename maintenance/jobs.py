"""The cleanup jobs, in the order a run does them. Each is a function
`job(*, now) -> int` (how many rows it removed), registered by name with
`@job("name")`; a retention job later is one more registration (from its
own app's ready(), if it lives elsewhere)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from importlib import import_module

from django.conf import settings
from django.db.models import Exists, OuterRef

Job = Callable[..., int]
JOBS: dict[str, Job] = {}

# A login lists its session (allauth's and ours) before the response
# writes the session row (iam.sessions): a record younger than this is not
# judged by its row yet.
RECORD_GRACE = timedelta(hours=1)


def job(name: str):
    def register(function: Job) -> Job:
        JOBS[name] = function
        return function

    return register


def _session_model():
    return import_module(settings.SESSION_ENGINE).SessionStore.get_model_class()


def _without_session(rows, *, key: str = "session_key"):
    return rows.exclude(Exists(_session_model().objects.filter(session_key=OuterRef(key))))


@job("sessions")
def sessions_expired_delete(*, now: datetime) -> int:
    """Django's session rows past their expiry (what `clearsessions` does);
    the cached copies expire on their own."""
    return _session_model().objects.filter(expire_date__lt=now).delete()[0]


@job("session_records")
def session_records_ended_delete(*, now: datetime) -> int:
    """The lists of sessions (My sessions, an identity provider's sessions
    for single logout) whose session is gone."""
    from allauth.usersessions.models import UserSession

    from sso.models import SsoSession

    before = now - RECORD_GRACE
    removed = _without_session(UserSession.objects.filter(created_at__lt=before)).delete()[0]
    return removed + _without_session(SsoSession.objects.filter(created__lt=before)).delete()[0]


@job("api_tokens")
def api_tokens_expired_delete(*, now: datetime) -> int:
    """What `manage.py cleartokens` does (the toolkit's rules: refresh tokens
    are kept while reuse detection needs them); counted as the difference."""
    from oauth2_provider import models as toolkit

    kinds = (
        toolkit.get_access_token_model(),
        toolkit.get_refresh_token_model(),
        toolkit.get_id_token_model(),
        toolkit.get_grant_model(),
    )
    before = sum(model.objects.count() for model in kinds)
    toolkit.clear_expired()
    return max(0, before - sum(model.objects.count() for model in kinds))


@job("mail_tasks")
def mail_tasks_finished_delete(*, now: datetime) -> int:
    """Sent mails after IAM_MAINTENANCE_KEEP_SENT_DAYS, failed ones (which
    `mailqueue` lists and can retry) after IAM_MAINTENANCE_KEEP_FAILED_DAYS."""
    from django.db.models import Q
    from django_tasks_db.models import DBTaskResult

    sent = now - timedelta(days=settings.IAM_MAINTENANCE_KEEP_SENT_DAYS)
    failed = now - timedelta(days=settings.IAM_MAINTENANCE_KEEP_FAILED_DAYS)
    return DBTaskResult.objects.filter(
        Q(status="SUCCESSFUL", finished_at__lt=sent) | Q(status="FAILED", finished_at__lt=failed)
    ).delete()[0]


@job("email_changes")
def email_changes_expired_delete(*, now: datetime) -> int:
    """Address changes whose link has expired (accounts.services.emails)."""
    from accounts.models import EmailChange
    from accounts.tokens import EMAIL_CHANGE_TIMEOUT

    horizon = now - timedelta(seconds=EMAIL_CHANGE_TIMEOUT)
    return EmailChange.objects.filter(created_at__lt=horizon).delete()[0]


@job("access_ends")
def access_ends_record(*, now: datetime) -> int:
    """Ended time-bound memberships, activations and unanswered requests,
    recorded (audited, mailed) once each; the worker also does this every
    minute (maintenance.worker), so this run finds what it missed."""
    from accounts.services.privileged import expire_due

    return expire_due(now=now)
