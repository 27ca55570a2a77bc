"""Helpers of the audit trail's tests (trail/): events written the way the
application writes them, and `audit verify` run as an operator runs it."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from accounts.audit import Actor, AuditAction, audit
from accounts.models import AuditEvent

TABLE = AuditEvent._meta.db_table


def make_events(count: int, *, days_ago: float | None = None) -> list[int]:
    """`count` events through accounts.audit; backdated (before sealing)."""
    ids = [
        audit(
            AuditAction.USER_UPDATED,
            by=Actor(label="tester", channel="cli", ip="192.0.2.7"),
            target_label=f"person{i}@shop.example",
            target_type="user",
            target_id=str(i),
            details={"last_name": ["Old", f"New {i} ü"], "z": {"b": 1, "a": [2, 3.5]}},
        ).pk
        for i in range(count)
    ]
    if days_ago is not None:
        at = timezone.now() - timedelta(days=days_ago)
        AuditEvent.objects.filter(pk__in=ids).update(created_at=at)
    return ids


def run(*args) -> tuple[int, str]:
    """(exit status, what it printed) of `manage.py audit ARGS`."""
    out = StringIO()
    try:
        call_command("audit", *args, stdout=out, stderr=out)
    except CommandError as exc:
        return 1, out.getvalue() + str(exc)
    return 0, out.getvalue()


def sql(statement: str, params=()) -> None:
    """A statement straight to the database, past the application."""
    with connection.cursor() as cursor:
        cursor.execute(statement.replace("{table}", TABLE), params)
