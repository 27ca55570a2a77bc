"""`manage.py worker`: the mail queue's and the security-event webhook's
worker (what `db_worker --queue-name mail,events` did), which also runs the
maintenance every IAM_MAINTENANCE_EVERY, records ended access every minute
(--expiry-every) and waits out a database outage instead of exiting
(maintenance.worker)."""

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils.crypto import get_random_string
from django_tasks_db.management.commands.db_worker import valid_interval

from accounts.mail import QUEUE as MAIL
from maintenance.schedule import parse_every
from maintenance.worker import EXPIRY_EVERY, Worker
from stream.webhook import QUEUE as EVENTS


class Command(BaseCommand):
    help = (
        "Send queued mail and security events and run the maintenance every IAM_MAINTENANCE_EVERY; "
        "waits for the database when it is unavailable."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--interval",
            type=valid_interval,
            default=1.0,
            help="Seconds to wait when no mail is due (default: 1).",
        )
        parser.add_argument(
            "--expiry-every",
            type=valid_interval,
            default=EXPIRY_EVERY,
            help=(
                "Seconds between recordings of ended memberships, activations and "
                f"requests (default: {EXPIRY_EVERY:g})."
            ),
        )
        parser.add_argument(
            "--batch",
            action="store_true",
            help="Send what is due, then exit (tests, one-off runs).",
        )

    def handle(self, *args, interval, expiry_every, batch, **options):
        worker = Worker(
            queue_names=[MAIL, EVENTS],
            interval=interval,
            batch=batch,
            backend_name="default",
            startup_delay=not batch,
            max_tasks=None,
            worker_id=get_random_string(32),
            excluded_queue_names=[],
            maintenance_every=parse_every(settings.IAM_MAINTENANCE_EVERY),
            expiry_every=expiry_every,
        )
        worker.configure_signals()
        worker.run()
