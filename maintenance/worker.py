"""The worker: django-tasks-db's mail worker loop, which also runs the
maintenance on its schedule and rides out database outages.

`manage.py db_worker` exits (status 1, a traceback) at the first lost
connection, so mail waited for a person to restart it. Here a database that
cannot be reached is one warning line per outage, then a wait (1 s doubling
to 30 s) and a new connection, and one line when it is back; a task that
the outage interrupted is queued again (a mail may then go twice, never
not at all). Between tasks the worker asks whether a maintenance run is
due (maintenance.services: at most one run per period across every worker).

Every EXPIRY_EVERY, whatever IAM_MAINTENANCE_EVERY says, it also records the
ends of privileged access (accounts.services.privileged.expire_due): the
rights were gone at their end already; this writes the audit trail and the
mails within about a minute of it. Several workers may do it at once: each
end is claimed by a conditional write, so it is recorded once. Access
reviews' reminders, ends and next instances ride the same minute.

Every IAM_AUDIT_SEAL_EVERY seconds it seals the settled audit events
(trail.services), a batch per transaction and at most SEAL_BATCHES per turn
(then its next turn comes at once), so a backlog never holds up the mail.
Two workers sealing at once cannot seal a range twice (trail.models); a
worker that finds the newest seal it saw removed or replaced stops sealing
and says so every turn (trail.services.SealChainRewound).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from datetime import timedelta
from importlib import import_module

from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connections,
)
from django_tasks_db.management.commands.db_worker import Worker as QueueWorker
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception

from accounts.audit import Actor
from iam.logs import current_actor, current_request_id, new_request_id
from maintenance.services import maintenance_run

logger = logging.getLogger("iam.worker")

OUTAGES = (OperationalError, InterfaceError)
OUTAGE_PATHS = {f"{cls.__module__}.{cls.__qualname__}" for cls in OUTAGES}
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 30.0
# How often a worker asks whether maintenance is due (the period, if shorter).
MAINTENANCE_CHECK = timedelta(minutes=1)
# How often a worker records ended memberships, activations and requests.
EXPIRY_EVERY = 60.0
# What runs every EXPIRY_EVERY: (name, function's dotted path, its log
# line for a count). Each claims its rows by conditional writes, so several
# workers may run them at once.
MINUTE_SWEEPS = (
    (
        "expiry",
        "accounts.services.privileged.expire_due",
        "recorded %d ended memberships, activations or requests",
    ),
    (
        "reviews",
        "reviews.services.reviews_sweep",
        "access reviews: %d reminders, ends or new instances",
    ),
)
# Batches a worker seals per turn before it looks at the mail again.
SEAL_BATCHES = 10


class Worker(QueueWorker):
    def __init__(
        self,
        *,
        maintenance_every: timedelta | None,
        expiry_every: float = EXPIRY_EVERY,
        **options,
    ):
        super().__init__(**options)
        self.expiry_every = expiry_every
        self.maintenance_every = maintenance_every
        self.next_maintenance = 0.0  # monotonic time of the next question
        self.next_minute = 0.0  # monotonic time of the next run of MINUTE_SWEEPS
        self.next_seal = 0.0  # monotonic time of the next sealing of the audit trail
        self.seal_memory: dict = {}  # the newest audit seal seen (trail.services)
        self.down_since: float | None = None
        self.in_hand: DBTaskResult | None = None
        self.sleeping = False

    def shutdown(self, signum, frame) -> None:
        """SIGTERM ends the loop once the step in hand is done: django-tasks-db
        leaves at once unless a task runs, which here could cut a sweep's or
        a seal's COMMIT (a traceback, the step rolled back). Only while the
        worker sleeps does it leave at once; a second signal forces it."""
        if self.running and not self.sleeping:
            logger.warning(
                "Received %s - shutting down gracefully... (press Ctrl+C again to force)",
                signal.strsignal(signum),
            )
            self.running = False
            return
        super().shutdown(signum, frame)

    def _sleep(self, seconds: float) -> None:
        self.sleeping = True
        try:
            time.sleep(seconds)
        finally:
            self.sleeping = False

    def run(self) -> None:
        every = self.maintenance_every
        logger.info(
            "worker %s: queues %s, maintenance %s",
            self.worker_id,
            ",".join(self.queue_names),
            f"every {every}" if every else "off",
        )
        backoff = BACKOFF_FIRST
        while self.running:
            try:
                close_old_connections()
                if self.down_since is not None:
                    with connections["default"].cursor() as cursor:
                        cursor.execute("SELECT 1")  # still down: raises
                    self._back()
                self._minute()
                self._seal()
                self._maintain()
                task_result = self._claim()
                if task_result is not None:
                    self.run_task(task_result)
                close_old_connections()
            except OUTAGES as exc:
                if isinstance(exc, OperationalError) and is_locked_database_exception(exc):
                    self._sleep(self.interval)  # SQLite busy: it unlocks
                    continue
                self._down(exc)
                self._sleep(backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            backoff = BACKOFF_FIRST
            if self.batch and task_result is None:
                return
            if self.max_tasks is not None and self._run_tasks >= self.max_tasks:
                return
            if self.running and task_result is None:
                self._sleep(self.interval)

    def _claim(self) -> DBTaskResult | None:
        """The next due task, claimed (django-tasks-db's own steps)."""
        tasks = DBTaskResult.objects.ready().filter(backend_name=self.backend_name)
        if not self.process_all_queues:
            tasks = tasks.filter(queue_name__in=self.queue_names)
        with exclusive_transaction(tasks.db):
            task_result = tasks.get_locked()
            if task_result is not None:
                task_result.claim(self.worker_id)
        return task_result

    def run_task(self, db_task_result: DBTaskResult) -> None:
        """As django-tasks-db runs it, but a task that failed because the
        database went away is not failed: it is queued again."""
        self.in_hand = db_task_result
        super().run_task(db_task_result)  # records the outcome; may raise an outage
        if (
            db_task_result.status == "FAILED"
            and db_task_result.exception_class_path in OUTAGE_PATHS
        ):
            self._requeue(db_task_result)
        self.in_hand = None

    def _requeue(self, row: DBTaskResult) -> None:
        DBTaskResult.objects.filter(pk=row.pk, status__in=["RUNNING", "FAILED"]).update(
            status="READY", started_at=None, finished_at=None, exception_class_path="", traceback=""
        )
        logger.warning("worker: task %s was interrupted by the outage; queued again", row.pk)

    def _maintain(self) -> None:
        every = self.maintenance_every
        if every is None or time.monotonic() < self.next_maintenance:
            return
        self.next_maintenance = time.monotonic() + min(every, MAINTENANCE_CHECK).total_seconds()
        # Each run is filed under a request id of its own (iam.logs), as a task is.
        rid = current_request_id.set(new_request_id())
        actor = current_actor.set("worker:maintenance")
        try:
            maintenance_run(by=Actor.system(label="maintenance", channel="worker"), every=every)
        except OUTAGES:
            raise
        except Exception:
            # A bug in the cleanup must not stop the mail: logged, tried next period.
            logger.exception("worker: maintenance run failed")
            self.next_maintenance = time.monotonic() + every.total_seconds()
        finally:
            current_actor.reset(actor)
            current_request_id.reset(rid)

    def _minute(self) -> None:
        """Every `expiry_every` seconds, each of MINUTE_SWEEPS, each with a
        request id of its own; one sweep's bug neither stops the others nor
        the mail (logged, tried next time); an outage brings them all back
        as soon as the database is."""
        if time.monotonic() < self.next_minute:
            return
        self.next_minute = time.monotonic() + self.expiry_every
        for name, path, done in MINUTE_SWEEPS:
            module, function = path.rsplit(".", 1)
            rid = current_request_id.set(new_request_id())
            actor = current_actor.set(f"worker:{name}")
            try:
                count = getattr(import_module(module), function)()
            except OUTAGES:
                self.next_minute = 0.0
                raise
            except Exception:
                logger.exception("worker: %s sweep failed", name)
                continue
            finally:
                current_actor.reset(actor)
                current_request_id.reset(rid)
            if count:
                logger.info("worker: " + done, count)

    def _seal(self) -> None:
        if time.monotonic() < self.next_seal:
            return
        from django.conf import settings

        from trail.services import SealChainRewound, audit_seal_pending

        self.next_seal = time.monotonic() + settings.IAM_AUDIT_SEAL_EVERY
        try:
            sealed = audit_seal_pending(max_batches=SEAL_BATCHES, memory=self.seal_memory)
        except OUTAGES:
            self.next_seal = 0.0
            raise
        except SealChainRewound as exc:
            # Tampering: said every turn until someone looks (audit verify).
            logger.error("worker: not sealing the audit trail: %s", exc)
            return
        except Exception:
            # A bug here must not stop the mail: logged, tried next turn.
            logger.exception("worker: sealing the audit trail failed")
            return
        if sealed >= SEAL_BATCHES * settings.IAM_AUDIT_SEAL_BATCH:
            self.next_seal = 0.0  # a backlog: the next batches after this turn's mail

    def _down(self, exc: BaseException) -> None:
        for connection in connections.all(initialized_only=True):
            with contextlib.suppress(DatabaseError, InterfaceError):
                connection.close()  # a new one is made on the next query
        if self.down_since is None:
            self.down_since = time.monotonic()
            first = (str(exc).strip().splitlines() or [""])[0][:200]
            logger.warning(
                "worker: database unavailable (%s: %s); waiting, retrying up to every %g s",
                type(exc).__name__,
                first,
                BACKOFF_MAX,
            )

    def _back(self) -> None:
        if self.in_hand is not None:
            self._requeue(self.in_hand)
            self.in_hand = None
        logger.warning(
            "worker: database reachable again after %.0f s", time.monotonic() - self.down_since
        )
        self.down_since = None
