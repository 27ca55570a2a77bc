"""`manage.py mailqueue`: what the mail worker has still to send, and what it
gave up on (accounts.mail).

    manage.py mailqueue                  # queued, sending and failed mails
    manage.py mailqueue retry ID [ID …]  # queue failed mails again
    manage.py mailqueue retry --all      # every failed mail not retried yet

A retried mail starts its attempts over; the failed task stays as it was,
marked with the id of its retry, so it is retried once. Finished tasks are
removed by the worker's maintenance (sent after 7 days, failed after 30).
"""

from __future__ import annotations

import uuid

from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult, get_date_max

from accounts.mail import QUEUE, deliver, describe, password_reset_requested
from iam import commands as base

_TASKS = {t.module_path: t for t in (deliver, password_reset_requested)}


def _mail_tasks():
    return DBTaskResult.objects.filter(queue_name=QUEUE, task_path__in=list(_TASKS))


def _summary(row: DBTaskResult) -> str:
    kwargs = row.args_kwargs.get("kwargs", {})
    if "mail" in kwargs:
        mail = kwargs["mail"]
        return f"{describe(mail)} to={mail.get('to', '?')} attempt={kwargs.get('attempt', 1)}"
    return f"reset request for={kwargs.get('email', '?')}"


def _when(row: DBTaskResult) -> str:
    if row.status == "FAILED":
        return f"failed={row.finished_at:%Y-%m-%d %H:%M:%S}"
    if row.status == "RUNNING":
        return f"started={row.started_at:%Y-%m-%d %H:%M:%S}"
    if row.run_after == get_date_max() or row.run_after <= timezone.now():
        return "due=now"
    return f"due={row.run_after:%Y-%m-%d %H:%M:%S}"


def _error(row: DBTaskResult) -> str:
    lines = row.traceback.strip().splitlines()
    return lines[-1] if lines else row.exception_class_path


class Command(base.Command):
    help = "List queued and failed mails; queue failed ones again."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action")
        sub.add_parser("list", help="queued, sending and failed mails (the default)")
        retry = sub.add_parser("retry", help="queue failed mails again")
        retry.add_argument("ids", nargs="*", metavar="ID", help="the ids `mailqueue list` shows")
        retry.add_argument(
            "--all", action="store_true", dest="every", help="every failed mail not retried yet"
        )

    def handle(self, *args, action=None, ids=(), every=False, **options):
        if action == "retry":
            self._retry(ids, every=every)
        else:
            self._list()

    def _list(self) -> None:
        """One line a mail, times in UTC; delivered ones are not listed."""
        waiting = _mail_tasks().filter(status__in=["READY", "RUNNING"]).order_by("run_after")
        failed = _mail_tasks().filter(status="FAILED", return_value__isnull=True)
        waiting, failed = list(waiting), list(failed.order_by("finished_at"))
        self.stdout.write(f"queued: {len(waiting)}")
        for row in waiting:
            state = "sending" if row.status == "RUNNING" else "queued"
            self.stdout.write(f"  {row.id}  {state}  {_summary(row)}  {_when(row)}")
        self.stdout.write(f"failed: {len(failed)}")
        for row in failed:
            self.stdout.write(f"  {row.id}  failed  {_summary(row)}  {_when(row)}  {_error(row)}")

    def _retry(self, ids, *, every: bool) -> None:
        if bool(ids) == every:
            raise CommandError("Give the ids of failed mails, or --all.")
        for value in ids:
            try:
                uuid.UUID(value)
            except ValueError:
                raise CommandError(f"'{value}' is not a mail id.") from None
        with transaction.atomic():
            rows = _mail_tasks().select_for_update().filter(status="FAILED")
            rows = rows.filter(return_value__isnull=True) if every else rows.filter(id__in=ids)
            rows = list(rows)
            found = {str(row.id): row for row in rows}
            for value in ids:
                row = found.get(str(uuid.UUID(value)))
                if row is None:
                    raise CommandError(f"No failed mail with id {value}.")
                if row.return_value is not None:
                    retried = row.return_value.get("retried_as")
                    raise CommandError(f"Mail {value} was retried already, as {retried}.")
            for row in rows:
                kwargs = dict(row.args_kwargs["kwargs"])
                if "attempt" in kwargs:
                    kwargs["attempt"] = 1
                result = _TASKS[row.task_path].enqueue(**kwargs)
                row.return_value = {"retried_as": result.id}
                row.save(update_fields=["return_value"])
                self.stdout.write(f"{row.id} queued again as {result.id}: {_summary(row)}")
        if not rows:
            self.stdout.write("No failed mail to retry.")
