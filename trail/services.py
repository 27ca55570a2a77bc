"""Writing seals and archives. Writing an audit event stays one INSERT on
the request path (accounts.audit); sealing happens afterwards, here, from
the worker (maintenance.worker) and the maintenance run (trail.jobs).

Ordering and late commits: an event's id is allocated at INSERT but the
row becomes visible at COMMIT, so an event with a lower id may appear after
a higher one was sealed. Only "settled" events are sealed: created more than
IAM_AUDIT_SEAL_SETTLE_SECONDS ago (default 300), far longer than any
request's transaction. Each seal covers the unbroken run of settled events
after the last seal, in id order, up to IAM_AUDIT_SEAL_BATCH events; an
event that commits inside a sealed range later is reported by verify as
inserted.

Concurrency: a seal links to the previous seal's MAC and both `seq` and
`prev_mac` are unique, so two workers sealing at once cannot both write
the next seal; the loser's insert fails, its transaction is rolled back
and it stops.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.audit import Actor, AuditAction, audit
from accounts.models import AuditEvent
from trail import archive_files, keys
from trail.canonical import COLUMNS, content, line, record
from trail.models import GENESIS, AuditAnchor, AuditSeal
from trail.seals import events_hash, header, of_row, pack_ids
from trail.selectors import Report, _db_events, _Peek, _walk

logger = logging.getLogger("iam.trail")


def _chain_end() -> tuple[int, str, int]:
    """(next seq, previous MAC, last sealed event id) after the newest seal."""
    last = AuditSeal.objects.order_by("-seq").first()
    if last is not None:
        return last.seq + 1, last.mac, last.last_event_id
    anchor = AuditAnchor.objects.filter(pk=1).first()
    if anchor is not None:
        return anchor.seq + 1, anchor.mac, anchor.last_event_id
    return 1, GENESIS, 0


class SealChainRewound(Exception):
    """The newest seal this process knew is gone or different: someone
    removed or replaced seals in the database. Nothing is sealed (sealing
    again would vouch for whatever the events now say)."""


def _check_memory(memory: dict, *, seq: int, prev_mac: str) -> None:
    """`memory` holds the newest seal a long-lived process (the worker) saw;
    the chain must still hold it."""
    known, mac = memory.get("seq"), memory.get("mac")
    if known is None:
        return
    if known >= seq:
        raise SealChainRewound(
            f"the newest audit seal went back from {known} to {seq - 1}: seals were removed"
        )
    if known == seq - 1:
        holds = keys.same(prev_mac, mac)
    else:
        anchor = AuditAnchor.objects.filter(pk=1).first()
        if anchor is not None and anchor.seq >= known:
            holds = anchor.seq > known or keys.same(anchor.mac, mac)
        else:
            row = AuditSeal.objects.filter(seq=known).values_list("mac", flat=True).first()
            holds = row is not None and keys.same(row, mac)
    if not holds:
        raise SealChainRewound(f"audit seal {known} was removed or replaced")


def audit_seal_next(
    *, now: datetime | None = None, batch: int | None = None, memory: dict | None = None
) -> int:
    """Seal the next batch of settled events; how many were sealed (0: none
    due, or another worker sealed them first). With `memory` (a dict the
    caller keeps between calls), refuse to seal when seals it saw are gone:
    SealChainRewound."""
    now = now or timezone.now()
    batch = batch or settings.IAM_AUDIT_SEAL_BATCH
    settled = now - timedelta(seconds=settings.IAM_AUDIT_SEAL_SETTLE_SECONDS)
    key = keys.seal_key()
    seq, prev_mac, after_id = _chain_end()
    if memory is not None:
        _check_memory(memory, seq=seq, prev_mac=prev_mac)
        memory.update(seq=seq - 1, mac=prev_mac)
    rows = AuditEvent.objects.filter(id__gt=after_id).order_by("id").values_list(*COLUMNS)[:batch]
    ids, tags, first_at, last_at = [], [], None, None
    for row in rows:
        created_at = row[1]
        if settled <= created_at <= now:
            break  # not settled yet: the seal ends before it
        if created_at > now:
            # Dated in the future (a server's clock): waiting for it would
            # hold every later event unsealed; it is visible, so it is sealed.
            logger.warning("audit event %d is dated in the future (%s)", row[0], created_at)
        ids.append(row[0])
        tags.append(keys.event_tag(key, content(record(row))))
        first_at = created_at if first_at is None else min(first_at, created_at)
        last_at = created_at if last_at is None else max(last_at, created_at)
    if not ids:
        return 0
    tag_bytes = b"".join(tags)
    seal = {
        "seq": seq,
        "prev_mac": prev_mac,
        "first_event_id": ids[0],
        "last_event_id": ids[-1],
        "count": len(ids),
        "first_at": first_at,
        "last_at": last_at,
        "events_hash": events_hash(ids, tag_bytes),
        "key_id": keys.key_id(key),
        "created_at": now,
        "ids": pack_ids(ids),
        "tags": tag_bytes,
    }
    seal["mac"] = keys.mac(key, header(seal))
    try:
        with transaction.atomic():
            AuditSeal.objects.create(**seal)
    except IntegrityError:
        logger.info("audit seal %d was written by another worker meanwhile", seq)
        return 0
    if memory is not None:
        memory.update(seq=seq, mac=seal["mac"])
    # A copy of every seal's MAC outside the database (the logs): what shows
    # that newest seals were removed and their events sealed again.
    logger.info(
        "audit seal %d: events %d-%d (%d), mac=%s", seq, ids[0], ids[-1], len(ids), seal["mac"]
    )
    return len(ids)


def audit_seal_pending(
    *, now: datetime | None = None, max_batches: int | None = None, memory: dict | None = None
) -> int:
    """Seal every settled event (one transaction per batch, so a backlog of
    millions never needs one huge transaction); at most `max_batches`
    batches. How many events were sealed."""
    sealed, batches = 0, 0
    while max_batches is None or batches < max_batches:
        count = audit_seal_next(now=now, memory=memory)
        if not count:
            break
        sealed, batches = sealed + count, batches + 1
    if sealed:
        logger.info("audit trail: sealed %d events in %d seals", sealed, batches)
    return sealed


class ArchiveRefused(Exception):
    """Nothing was archived or removed (one line for the operator)."""


def audit_archive(
    *, now: datetime | None = None, by: Actor | None = None, max_batches: int | None = None
) -> int:
    """Move the sealed batches whose every event is older than
    IAM_AUDIT_RETENTION_DAYS to the archive (IAM_AUDIT_ARCHIVE_DIR), oldest
    first; how many events left the table.

    Only whole sealed batches, in chain order; never an unsealed event. A
    batch is verified against the database first (a tampered batch is
    refused, so retention cannot launder it). Its files are written and
    fsynced, and the manifest updated, BEFORE its rows are deleted in the
    same transaction: if a file cannot be written nothing is deleted; if the
    deletion fails the files are written again, identically, next time."""
    days = settings.IAM_AUDIT_RETENTION_DAYS
    if days is None:
        return 0
    now = now or timezone.now()
    directory = Path(settings.IAM_AUDIT_ARCHIVE_DIR)
    key = keys.seal_key()
    cutoff = now - timedelta(days=days)
    ring = keys.keyring()
    manifest = archive_files.manifest_read(directory)
    files = {}
    if manifest is not None:
        made_with = ring.get(manifest["key_id"])
        if made_with is None or not keys.same(
            archive_files.manifest_mac(made_with, manifest["files"], manifest["key_id"]),
            manifest["mac"],
        ):
            raise ArchiveRefused(f"{directory / archive_files.MANIFEST} does not match its MAC")
        files = dict(manifest["files"])
    moved, seals = 0, []
    while max_batches is None or len(seals) < max_batches:
        with transaction.atomic():
            row = AuditSeal.objects.select_for_update().order_by("seq").first()
            if row is None or row.last_at >= cutoff:
                break
            moved += _archive_one(
                row, key=key, ring=ring, directory=directory, files=files, now=now
            )
            seals.append(row.seq)
    if seals:
        audit(
            AuditAction.AUDIT_ARCHIVED,
            by=by or Actor.system(label="retention", channel="worker"),
            details={
                "events": moved,
                "seals": f"{seals[0]}-{seals[-1]}",
                "archived_before": cutoff.isoformat(timespec="seconds"),
            },
        )
        logger.info("audit trail: archived %d events in %d seals", moved, len(seals))
    return moved


def _archive_one(
    row: AuditSeal, *, key: bytes, ring: dict, directory: Path, files: dict, now
) -> int:
    seq, prev, after_id = _chain_start()
    report = Report()
    lines: list[bytes] = []
    events = _Peek(_recorded(_db_events(after_id), lines, row.last_event_id))
    _walk(seals=[of_row(row)], events=events, ring=ring, report=report, seq=seq, prev=prev)
    if not report.ok:
        first = report.problems()[0]
        raise ArchiveRefused(f"seal {row.seq} does not verify, nothing archived: {first}")
    seal = of_row(row)
    for name, data in (
        (archive_files.events_name(row.seq), archive_files.events_bytes(lines)),
        (archive_files.seal_name(row.seq), archive_files.seal_bytes(seal)),
    ):
        archive_files.write_atomic(directory, name, data)
        files[name] = archive_files.sha256_of(directory / name)
    archive_files.manifest_write(directory, key=key, files=files)
    removed = AuditEvent.objects.filter(
        id__gte=row.first_event_id, id__lte=row.last_event_id
    ).delete()[0]
    AuditAnchor.objects.update_or_create(
        pk=1,
        defaults={
            "seq": row.seq,
            "mac": row.mac,
            "last_event_id": row.last_event_id,
            "header": header(seal).decode(),
            "archived_at": now,
        },
    )
    row.delete()
    return removed


def _chain_start() -> tuple[int, str, int]:
    anchor = AuditAnchor.objects.filter(pk=1).first()
    if anchor is not None:
        return anchor.seq + 1, anchor.mac, anchor.last_event_id
    return 1, GENESIS, 0


def _recorded(events, lines: list[bytes], last_id: int):
    """The events up to `last_id`, each also kept as its archive line."""
    for values in events:
        if values["id"] > last_id:
            return
        lines.append(line(values) if "created_at" in values else b"")
        yield values
