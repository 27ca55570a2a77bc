"""The trail's maintenance jobs (maintenance.jobs), run after the others:
seal what is settled, then archive what is past retention. `maintenance
--once` therefore seals too, for operators who run no worker."""

from __future__ import annotations

import logging
from datetime import datetime

from maintenance.jobs import job

logger = logging.getLogger("iam.trail")

# A maintenance run is one transaction: at most this many batches in it (the
# worker seals the rest of a backlog, a batch per transaction).
SEAL_BATCHES_PER_RUN = 100
# The same for archiving: a first run over years of events moves them over
# several runs rather than holding the run's transaction for all of them.
ARCHIVE_BATCHES_PER_RUN = 100


@job("audit_seal")
def audit_seal(*, now: datetime) -> int:
    """Seals what is settled. Removes nothing, so it counts 0; the log says
    how many events it sealed."""
    from trail.services import audit_seal_pending

    audit_seal_pending(now=now, max_batches=SEAL_BATCHES_PER_RUN)
    return 0


@job("audit_archive")
def audit_archive(*, now: datetime) -> int:
    """Events past IAM_AUDIT_RETENTION_DAYS, archived and removed."""
    from trail.services import ArchiveRefused, audit_archive

    try:
        return audit_archive(now=now, max_batches=ARCHIVE_BATCHES_PER_RUN)
    except (ArchiveRefused, OSError) as exc:
        logger.error("audit archive refused: %s", exc)
        raise
