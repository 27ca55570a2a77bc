"""One maintenance run: every registered job (maintenance.jobs), one run at
a time however many workers ask, audited with its counts.

The guard is the row MaintenanceState(pk=1), locked for the whole run
(SELECT … FOR UPDATE on PostgreSQL; on SQLite the run's transaction takes
the one write lock when it begins). A scheduled run skips when another
holds the lock (SKIP LOCKED) or when the last run is younger than the
period; an operator's run (`maintenance --once`) waits for the lock and
runs anyway.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from accounts.audit import Actor, AuditAction, audit
from maintenance.jobs import JOBS
from maintenance.models import MaintenanceState

logger = logging.getLogger("iam.maintenance")


@dataclass
class MaintenanceRun:
    at: datetime
    counts: dict[str, int] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = " ".join(f"{name}={count}" for name, count in self.counts.items())
        return text + (f" failed={','.join(self.failed)}" if self.failed else "")


def maintenance_due(*, every: timedelta, now: datetime | None = None) -> bool:
    """Whether the last run is older than `every` (read without a lock: the
    cheap question a worker asks often)."""
    now = now or timezone.now()
    last = MaintenanceState.objects.filter(pk=1).values_list("last_run_at", flat=True).first()
    return last is None or now - last >= every


def maintenance_run(*, by: Actor, every: timedelta | None = None) -> MaintenanceRun | None:
    """Run every job now; with `every` (the worker's schedule) only if no
    other run is under way and the last one is at least that old. Returns
    the run, or None when skipped. A job that fails is rolled back alone,
    named in the run and its audit event; the others still run. A lost
    database connection ends the run (nothing of it is kept)."""
    if every is not None and not maintenance_due(every=every):
        return None
    MaintenanceState.objects.get_or_create(pk=1)
    with transaction.atomic():
        rows = MaintenanceState.objects.filter(pk=1)
        state = rows.select_for_update(skip_locked=every is not None).first()
        if state is None:
            return None  # another run holds the row
        now = timezone.now()
        if every is not None and state.last_run_at and now - state.last_run_at < every:
            return None  # another worker ran it while this one waited
        run = MaintenanceRun(at=now)
        for name, job in JOBS.items():
            try:
                with transaction.atomic():
                    run.counts[name] = job(now=now)
            except (OperationalError, InterfaceError):
                raise
            except Exception as exc:  # noqa: BLE001 - one job's bug must not stop the others
                logger.warning("maintenance job %s failed: %s", name, type(exc).__name__)
                run.failed.append(name)
        state.last_run_at = now
        state.save(update_fields=["last_run_at"])
        if run.failed or any(run.counts.values()):
            audit(
                AuditAction.MAINTENANCE_RAN,
                by=by,
                success=not run.failed,
                details={"removed": run.counts, **({"failed": run.failed} if run.failed else {})},
            )
    logger.info("maintenance ran: %s", run.summary())
    return run
