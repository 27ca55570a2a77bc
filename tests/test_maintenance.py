"""Maintenance without cron (issue 22, item 5): `manage.py maintenance
--once`, the worker's schedule, one run at a time with several workers."""

import io
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from oauth2_provider.models import AccessToken

from accounts.audit import Actor
from accounts.models import AuditEvent, EmailChange, Membership
from maintenance import jobs
from maintenance.models import MaintenanceState
from maintenance.schedule import parse_every
from maintenance.services import maintenance_run
from sso.models import SsoSession
from tests.factories import GroupFactory, UserFactory
from tests.servers import ROOT

NOW = timezone.now


def _session(key: str, *, expires) -> None:
    Session.objects.create(session_key=key, session_data="", expire_date=expires)


def _task(status: str, *, days_ago: float) -> DBTaskResult:
    return DBTaskResult.objects.create(
        status=status,
        args_kwargs={"args": [], "kwargs": {}},
        task_path="accounts.mail.deliver",
        queue_name="mail",
        backend_name="default",
        run_after=NOW(),
        finished_at=NOW() - timedelta(days=days_ago),
    )


@pytest.fixture
def stale_and_live(db):
    """One expired and one live record of every kind the jobs clean."""
    user = UserFactory()
    old = NOW() - timedelta(hours=2)
    _session("expired" + "e" * 25, expires=NOW() - timedelta(minutes=1))
    _session("live" + "l" * 28, expires=NOW() + timedelta(hours=1))
    for key in ("gone" + "g" * 28, "live" + "l" * 28):
        UserSession.objects.create(user=user, ip="127.0.0.1", session_key=key, created_at=old)
        SsoSession.objects.create(user=user, session_key=key, provider="fake", sub="s")
    SsoSession.objects.update(created=old)
    # A login's record before its session row is written: kept.
    UserSession.objects.create(user=user, ip="127.0.0.1", session_key="new" + "n" * 29)
    AccessToken.objects.create(user=user, token="old-" + "x" * 40, expires=NOW() - timedelta(1))
    AccessToken.objects.create(user=user, token="new-" + "x" * 40, expires=NOW() + timedelta(1))
    _task("SUCCESSFUL", days_ago=8)
    _task("SUCCESSFUL", days_ago=1)
    _task("FAILED", days_ago=8)  # kept: `mailqueue` lists it for a month
    _task("FAILED", days_ago=31)
    for n in range(2):
        EmailChange.objects.create(
            user=UserFactory(), new_email=f"new{n}@shop.example", old_email="x@shop.example"
        )
    EmailChange.objects.filter(new_email="new0@shop.example").update(
        created_at=NOW() - timedelta(hours=25)
    )
    # A time-bound membership that has ended, and one that has not.
    for name, ends in (("ended", NOW() - timedelta(minutes=1)), ("later", NOW() + timedelta(1))):
        Membership.objects.create(user=user, group=GroupFactory(name=name), ends_at=ends)
    return user


def _manage(env: dict, *args: str) -> subprocess.CompletedProcess:
    """`manage.py ARGS` in a process of its own, with only `env`."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_once_removes_what_expired_keeps_the_rest_prints_and_audits(stale_and_live):
    user = stale_and_live
    out = io.StringIO()
    call_command("maintenance", "--once", stdout=out)
    assert out.getvalue().splitlines() == [
        "sessions: 1 removed",
        "session_records: 2 removed",
        "api_tokens: 1 removed",
        "mail_tasks: 2 removed",
        "email_changes: 1 removed",
        "access_ends: 1 removed",
        "audit_seal: 0 removed",
        "audit_archive: 0 removed",
    ]
    assert list(Session.objects.values_list("session_key", flat=True)) == ["live" + "l" * 28]
    assert set(UserSession.objects.values_list("session_key", flat=True)) == {
        "live" + "l" * 28,
        "new" + "n" * 29,
    }
    assert list(SsoSession.objects.values_list("session_key", flat=True)) == ["live" + "l" * 28]
    assert list(AccessToken.objects.values_list("token", flat=True)) == ["new-" + "x" * 40]
    assert sorted(DBTaskResult.objects.values_list("status", flat=True)) == [
        "FAILED",
        "SUCCESSFUL",
    ]
    assert list(EmailChange.objects.values_list("new_email", flat=True)) == ["new1@shop.example"]
    event = AuditEvent.objects.get(action="maintenance.ran")
    assert event.details == {
        "removed": {
            "sessions": 1,
            "session_records": 2,
            "api_tokens": 1,
            "mail_tasks": 2,
            "email_changes": 1,
            "access_ends": 1,
            "audit_seal": 0,
            "audit_archive": 0,
        }
    }
    assert list(user.memberships.values_list("group__name", flat=True)) == ["later"]
    assert AuditEvent.objects.get(action="membership.expired").details["group"] == "ended"
    assert event.actor_label == "maintenance" and event.channel == "cli"
    assert event.outcome == "success"

    # Nothing left to remove: printed, but no audit event for nothing.
    call_command("maintenance", "--once", stdout=io.StringIO())
    assert AuditEvent.objects.filter(action="maintenance.ran").count() == 1


def test_a_failing_job_is_named_the_others_run_and_the_exit_is_1(db, monkeypatch):
    _session("expired" + "e" * 25, expires=NOW() - timedelta(minutes=1))

    def broken(*, now):
        raise RuntimeError("a bug")

    monkeypatch.setitem(jobs.JOBS, "broken", broken)
    out = io.StringIO()
    with pytest.raises(CommandError, match="maintenance jobs failed: broken"):
        call_command("maintenance", "--once", stdout=out)
    assert "sessions: 1 removed" in out.getvalue()
    assert not Session.objects.exists()
    event = AuditEvent.objects.get(action="maintenance.ran")
    assert event.outcome == "failure" and event.details["failed"] == ["broken"]


def test_a_scheduled_run_waits_for_its_period(db):
    worker = Actor.system(label="maintenance", channel="worker")
    assert maintenance_run(by=worker, every=timedelta(hours=1)) is not None
    assert maintenance_run(by=worker, every=timedelta(hours=1)) is None
    MaintenanceState.objects.update(last_run_at=NOW() - timedelta(minutes=61))
    assert maintenance_run(by=worker, every=timedelta(hours=1)) is not None
    # The operator's run does not wait for the period.
    assert maintenance_run(by=Actor.system(label="maintenance")) is not None


@pytest.mark.parametrize(
    ("text", "every"),
    [
        ("1h", timedelta(hours=1)),
        ("30m", timedelta(minutes=30)),
        ("15s", timedelta(seconds=15)),
        ("2d", timedelta(days=2)),
        (" 1H ", timedelta(hours=1)),
        ("0", None),
        ("off", None),
        ("0m", None),
    ],
)
def test_the_period_is_read(text, every):
    assert parse_every(text) == every


@pytest.mark.parametrize("text", ["", "1", "h", "1.5h", "-1h", "1 h", "1w", "never"])
def test_a_wrong_period_is_refused(text):
    with pytest.raises(ValueError, match="IAM_MAINTENANCE_EVERY"):
        parse_every(text)


def test_a_wrong_period_stops_the_worker_at_start_with_one_clear_error(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "iam.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3",
        "IAM_MAINTENANCE_EVERY": "hourly",
    }
    result = _manage(env, "worker", "--batch")
    assert result.returncode == 1
    assert "(maintenance.E001) IAM_MAINTENANCE_EVERY='hourly' is not a period" in result.stderr
    assert "Traceback" not in result.stderr


def test_once_without_a_database_is_one_line_and_exit_1():
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "iam.settings",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:9/nothing",
    }
    result = _manage(env, "maintenance", "--once")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("CommandError: maintenance did not run: database unavailable")


def test_the_worker_runs_maintenance_on_its_schedule(transactional_db, settings, signals_kept):
    """In real transactions: the worker's loop closes a connection left
    inside one, as Django does between requests."""
    _session("expired" + "e" * 25, expires=NOW() - timedelta(minutes=1))
    settings.IAM_MAINTENANCE_EVERY = "1h"
    call_command("worker", "--batch")
    assert not Session.objects.exists()
    event = AuditEvent.objects.get(action="maintenance.ran")
    assert event.channel == "worker" and event.details["removed"]["sessions"] == 1

    _session("expired" + "f" * 25, expires=NOW() - timedelta(minutes=1))
    call_command("worker", "--batch")  # within the hour: not again
    assert Session.objects.count() == 1

    settings.IAM_MAINTENANCE_EVERY = "off"
    MaintenanceState.objects.update(last_run_at=None)
    call_command("worker", "--batch")  # off: never
    assert Session.objects.count() == 1


postgres_only = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "iam.db.postgresql",
    reason="row locks need PostgreSQL (SQLite has one writer at a time anyway)",
)


def _together(count: int, call):
    barrier = threading.Barrier(count)
    results = [None] * count

    def run(i):
        from django.db import connection

        barrier.wait()
        try:
            results[i] = call()
        except Exception as exc:  # noqa: BLE001 - reported by the assertion
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


@pytest.fixture
def slow_job(monkeypatch):
    """A job that takes a while and records who ran it when."""
    spans = []

    def slow(*, now):
        start = time.monotonic()
        time.sleep(0.5)
        spans.append((start, time.monotonic()))
        return 0

    monkeypatch.setitem(jobs.JOBS, "slow", slow)
    return spans


@postgres_only
def test_workers_asking_at_once_make_one_run(transactional_db, slow_job):
    worker = Actor.system(label="maintenance", channel="worker")
    results = _together(4, lambda: maintenance_run(by=worker, every=timedelta(hours=1)))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(r is not None for r in results) == 1
    assert len(slow_job) == 1


@postgres_only
def test_operator_runs_at_once_run_one_after_the_other(transactional_db, slow_job):
    operator = Actor.system(label="maintenance")
    results = _together(2, lambda: maintenance_run(by=operator))
    assert all(r is not None and not isinstance(r, Exception) for r in results), results
    (a_start, a_end), (b_start, b_end) = sorted(slow_job)
    assert b_start >= a_end  # never two at once


def test_a_task_cut_off_by_the_database_is_queued_again_not_failed(
    transactional_db, settings, signals_kept
):
    """A task that met a lost database did not fail on its own account: the
    worker queues it again, and its next run goes through."""
    from django.utils import timezone as tz

    from tests.support import worker_tasks

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["mail"]}}
    settings.IAM_MAINTENANCE_EVERY = "off"
    worker_tasks.RUNS.clear()
    row = DBTaskResult.objects.create(
        args_kwargs={"args": [], "kwargs": {}},
        task_path="tests.support.worker_tasks.cut_off_once",
        queue_name="mail",
        backend_name="default",
        run_after=tz.now(),
    )
    call_command("worker", "--batch")
    row.refresh_from_db()
    assert len(worker_tasks.RUNS) == 2
    assert row.status == "SUCCESSFUL" and row.return_value == "sent"
