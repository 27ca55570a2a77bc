"""`manage.py maintenance --once`: the cleanup the worker runs on its
schedule (IAM_MAINTENANCE_EVERY), now, for operators who prefer their own
scheduler. Prints what each job removed; exit 1 with one line when the
database cannot be reached or a job failed."""

from django.core.management.base import CommandError
from django.db import InterfaceError, OperationalError

from accounts.audit import Actor
from iam.commands import Command as BaseCommand
from maintenance.services import maintenance_run


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


class Command(BaseCommand):
    help = (
        "Remove expired sessions, API tokens, address changes and old finished mail tasks, "
        "record ended access, seal the audit trail and archive it past its retention, now "
        "(what the worker does every IAM_MAINTENANCE_EVERY)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--once",
            action="store_true",
            required=True,
            help="Run every cleanup job once now (waits for a run under way to finish).",
        )

    def handle(self, *args, once, **options):
        try:
            run = maintenance_run(by=Actor.system(label="maintenance"))
        except (OperationalError, InterfaceError) as exc:
            raise CommandError(
                f"maintenance did not run: database unavailable ({first_line(exc)})"
            ) from None
        for name, count in run.counts.items():
            self.stdout.write(f"{name}: {count} removed")
        if run.failed:
            raise CommandError(f"maintenance jobs failed: {', '.join(run.failed)} (see the log)")
