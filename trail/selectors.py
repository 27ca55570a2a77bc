"""Reading the trail back: verifying it (in the database, in an archive)
and searching an archive. Everything streams: events are read in id order
a chunk at a time and compared with the seals as they come, so memory stays
flat at millions of rows.

The walk (`_walk`) merges two ordered streams, the seals' (id, tag) lists
and the events, and names what differs:
- an id a seal lists that is not there: a missing event;
- an event whose tag differs: changed, or reordered when its contents are
  what the same seal sealed under another id;
- an event not in the seal whose range it lies in (before the seal's next
  id): inserted (or committed later than the settle window allowed);
- a seal whose MAC, hash or link to the previous seal is wrong: a broken
  seal; one made with another key: a key change (not tampering).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db.models import TextField
from django.db.models.functions import Cast

from accounts.models import AuditEvent
from trail import archive_files, keys
from trail.canonical import COLUMNS, FIELDS, content, record
from trail.models import GENESIS, AuditAnchor, AuditSeal
from trail.seals import of_row, seal_problem, tags_of, unknown_key, unpack_ids

CHUNK = 5000
KINDS = ("key", "seal", "archive", "unreadable", "missing", "changed", "reordered", "inserted")


@dataclass
class Report:
    """What a verification found: counts, and the first problem of each kind."""

    events: int = 0
    seals: int = 0
    unsealed: int = 0
    notes: list[str] = field(default_factory=list)
    first: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, message: str) -> None:
        self.first.setdefault(kind, message)
        self.counts[kind] = self.counts.get(kind, 0) + 1

    @property
    def ok(self) -> bool:
        return not self.counts

    def problems(self) -> list[str]:
        """One line per kind found, the first of that kind, in KINDS order."""
        lines = []
        for kind in KINDS:
            if kind in self.first:
                more = self.counts[kind] - 1
                suffix = f" (and {more} more of this kind)" if more else ""
                lines.append(f"{kind}: {self.first[kind]}{suffix}")
        return lines


class _Peek:
    def __init__(self, iterator: Iterator[dict]):
        self.iterator, self.head, self.done = iterator, None, False

    def peek(self) -> dict | None:
        if self.head is None and not self.done:
            self.head = next(self.iterator, None)
            self.done = self.head is None
        return self.head

    def take(self) -> dict | None:
        head = self.peek()
        self.head = None
        return head


def _walk(
    *,
    seals: Iterable[dict],
    events: _Peek,
    ring: dict[str, bytes],
    report: Report,
    seq: int | None,
    prev: str | None,
) -> tuple[int | None, str | None]:
    """Compare `seals` (in seq order) with `events` (in id order), starting
    at seal `seq` linked to `prev` (None: not checked). Returns the last
    seal's (seq, mac)."""
    for seal in seals:
        number = seal["seq"]
        if seq is not None and number != seq:
            report.add("seal", f"seal {seq} is missing: seal {number} follows seal {seq - 1}")
        elif prev is not None and not keys.same(seal["prev_mac"], prev):
            report.add(
                "seal",
                f"seal {number} does not chain to seal {number - 1} "
                "(a seal was replaced, edited or removed)",
            )
        problem = seal_problem(seal, ring=ring)
        key = ring.get(str(seal["key_id"]), b"")
        if problem:
            report.add(*problem)
        try:
            ids = unpack_ids(seal["ids"])
        except Exception:  # noqa: BLE001 - an unreadable list was reported above
            ids = ()
        tags = tags_of(seal)
        trusted = problem is None
        by_tag = None
        for index, sealed_id in enumerate(ids):
            while (event := events.peek()) is not None and event["id"] < sealed_id:
                events.take()
                report.add(
                    "inserted",
                    f"event {event['id']} lies in the range of seal {number} but is not "
                    "sealed by it (inserted, or committed after the seal was made)",
                )
            event = events.peek()
            if event is None or event["id"] > sealed_id:
                report.add("missing", f"event {sealed_id} is missing (sealed by seal {number})")
                continue
            events.take()
            report.events += 1
            if not trusted:
                continue
            tag = _tag(key, event)
            if hmac.compare_digest(tag, tags[index]):
                continue
            if by_tag is None:
                by_tag = {value: position for position, value in enumerate(tags)}
            other = by_tag.get(tag)
            if other is not None and other != index:
                report.add(
                    "reordered",
                    f"event {sealed_id} holds what seal {number} sealed as event "
                    f"{ids[other]} (events reordered)",
                )
            else:
                report.add("changed", f"event {sealed_id} was changed after seal {number}")
        report.seals += 1
        seq, prev = number + 1, seal["mac"]
    return seq, prev


def _tag(key: bytes, event: dict) -> bytes:
    try:
        return keys.event_tag(key, content(event))
    except (KeyError, TypeError, ValueError):
        return b""  # an event that lost a field: changed


# --- the database -----------------------------------------------------------


def _db_events(after_id: int) -> Iterator[dict]:
    """Events with id > after_id in id order, a chunk at a time (keyset)."""
    columns = [name if name != "details" else "details_text" for name in COLUMNS]
    while True:
        rows = list(
            AuditEvent.objects.filter(id__gt=after_id)
            .annotate(details_text=Cast("details", TextField()))
            .order_by("id")
            .values_list(*columns)[:CHUNK]
        )
        for row in rows:
            yield _db_record(row)
        if len(rows) < CHUNK:
            return
        after_id = rows[-1][0]


def _db_record(row: tuple) -> dict:
    try:
        return record(row)
    except (TypeError, ValueError):
        # Details no longer JSON (edited behind the application): changed.
        values = dict(zip(COLUMNS, row, strict=True))
        return {"id": values["id"], "unreadable": True}


def _db_seals(from_seq: int) -> Iterator[dict]:
    while True:
        rows = list(AuditSeal.objects.filter(seq__gte=from_seq).order_by("seq")[:20])
        for row in rows:
            yield of_row(row)
        if len(rows) < 20:
            return
        from_seq = rows[-1].seq + 1


def trail_verify(
    *,
    since: datetime | None = None,
    expect: tuple[int, str] | None = None,
    ring: dict[str, bytes] | None = None,
) -> Report:
    """Verify the trail in the database: the whole chain (from the first
    seal, or from the last archived one), or with `since` from the seal
    covering that moment. `expect` is a seal's (seq, MAC) recorded outside
    the database (the worker's log line, an earlier verify's summary): the
    chain must still hold it, which is how removed newest seals show."""
    ring = ring or keys.keyring()
    report = Report()
    anchor = AuditAnchor.objects.filter(pk=1).first()
    if since is not None:
        start = AuditSeal.objects.filter(last_at__gte=since).order_by("seq").first()
        if start is None:
            last = AuditSeal.objects.order_by("-seq").first()
            after = last.last_event_id if last else (anchor.last_event_id if anchor else 0)
            report.unsealed = AuditEvent.objects.filter(id__gt=after).count()
            report.notes.append(f"no seal covers events from {since:%Y-%m-%d %H:%M} on")
            return report
        before = AuditSeal.objects.filter(seq=start.seq - 1).first()
        seq, prev = start.seq, None
        after_id = start.first_event_id - 1
        if before is not None:
            prev, after_id = before.mac, before.last_event_id
        elif anchor is not None and anchor.seq == start.seq - 1:
            prev, after_id = anchor.mac, anchor.last_event_id
        elif start.seq == 1:
            prev, after_id = GENESIS, 0
        report.notes.append(f"from seal {start.seq}")
    elif anchor is not None:
        seq, prev, after_id = anchor.seq + 1, anchor.mac, anchor.last_event_id
        _anchor_check(anchor, ring=ring, report=report)
        _anchor_archived(anchor, report=report)
        report.notes.append(f"the chain continues from archived seal {anchor.seq}")
    else:
        seq, prev, after_id = 1, GENESIS, 0
    events = _Peek(_db_events(after_id))
    _walk(seals=_db_seals(seq), events=events, ring=ring, report=report, seq=seq, prev=prev)
    newest = AuditSeal.objects.order_by("-seq").values_list("seq", "mac", "last_event_id").first()
    last_id = newest[2] if newest else 0
    report.unsealed = AuditEvent.objects.filter(id__gt=max(last_id, after_id)).count()
    if newest:
        report.notes.append(f"newest seal {newest[0]} mac={newest[1]}")
    if expect is not None:
        _expect_check(expect, anchor=anchor, newest=newest[0] if newest else None, report=report)
    return report


def _expect_check(expect, *, anchor, newest, report: Report) -> None:
    seq, mac = expect
    row = AuditSeal.objects.filter(seq=seq).values_list("mac", flat=True).first()
    if row is None and anchor is not None and anchor.seq >= seq:
        if anchor.seq == seq and not keys.same(anchor.mac, mac):
            report.add("seal", f"archived seal {seq} differs from the MAC given (replaced)")
        elif anchor.seq > seq:
            report.notes.append(f"seal {seq} is archived: check it with --archive")
    elif row is None:
        report.add(
            "seal",
            f"seal {seq} is gone (the newest seal is {newest or 'none'}): "
            "the newest seals were removed",
        )
    elif not keys.same(row, mac):
        report.add("seal", f"seal {seq} differs from the MAC given (seals replaced)")


def _anchor_check(anchor: AuditAnchor, *, ring: dict[str, bytes], report: Report) -> None:
    try:
        header = json.loads(anchor.header)
        key = ring[header["key_id"]]
        intact = (
            header["seq"] == anchor.seq
            and header["last_event_id"] == anchor.last_event_id
            and keys.same(keys.mac(key, anchor.header.encode()), anchor.mac)
        )
    except (ValueError, KeyError, TypeError):
        intact = False
    if not intact:
        report.add(
            "seal",
            f"the archive anchor (archived seal {anchor.seq}) does not match its MAC "
            "(anchor edited, or made with another key)",
        )
    inside = AuditEvent.objects.filter(id__lte=anchor.last_event_id).order_by("id").first()
    if inside is not None:
        report.add(
            "inserted",
            f"event {inside.pk} lies in the archived range (up to event "
            f"{anchor.last_event_id}) but is in the database",
        )


def _anchor_archived(anchor: AuditAnchor, *, report: Report) -> None:
    """The anchor names the last archived seal: it must be in the archive
    (IAM_AUDIT_ARCHIVE_DIR), or the anchor was moved to hide removed seals."""
    directory = settings.IAM_AUDIT_ARCHIVE_DIR
    if not directory:
        report.notes.append("IAM_AUDIT_ARCHIVE_DIR unset: the archive was not compared")
        return
    path = Path(directory) / archive_files.seal_name(anchor.seq)
    try:
        archived = archive_files.seal_read(path)["mac"] if path.exists() else None
    except archive_files.ArchiveError:
        archived = None
    if archived is None or not keys.same(str(archived), anchor.mac):
        report.add(
            "seal",
            f"archived seal {anchor.seq}, where the database's chain continues, is not in "
            f"IAM_AUDIT_ARCHIVE_DIR as {path.name} (seals removed without archiving?)",
        )


# --- an archive -------------------------------------------------------------


def archive_verify(*, directory: Path, ring: dict[str, bytes] | None = None) -> Report:
    """Verify an archive directory: the manifest (MAC, every file's SHA-256,
    no file added or missing), each seal and its link to the one before,
    and each events file against its seal. Reads no database."""
    ring = ring or keys.keyring()
    report = Report()
    if not directory.is_dir():
        raise archive_files.ArchiveError(f"{directory} is not a directory")
    manifest = archive_files.manifest_read(directory)
    present = {p.name for p in directory.iterdir() if archive_files.NAMES.match(p.name)}
    listed: dict[str, str] = {}
    if manifest is None:
        report.add("archive", f"{archive_files.MANIFEST} is missing")
    else:
        listed = manifest["files"]
        key = ring.get(manifest["key_id"])
        if key is None:
            report.add("key", unknown_key(archive_files.MANIFEST, manifest["key_id"]))
        elif not keys.same(
            archive_files.manifest_mac(key, listed, manifest["key_id"]), manifest["mac"]
        ):
            report.add("archive", f"{archive_files.MANIFEST} does not match its MAC (edited)")
    for name in sorted(present - set(listed)):
        report.add("archive", f"{name} is not in the manifest (added after archiving)")
    for name in sorted(set(listed) - present):
        report.add("archive", f"{name} is missing (the manifest lists it)")
    for name in sorted(present & set(listed)):
        if not hmac.compare_digest(archive_files.sha256_of(directory / name), str(listed[name])):
            report.add("archive", f"{name} differs from its SHA-256 in the manifest (edited)")
    numbers = sorted({int(name.split("-")[1].split(".")[0]) for name in present})
    seal_numbers = [n for n in numbers if archive_files.seal_name(n) in present]
    if not seal_numbers:
        report.notes.append("the archive holds no seal")
        return report
    first = seal_numbers[0]
    if first != 1:
        report.notes.append(f"the archive starts at seal {first}")

    def seals():
        for number in seal_numbers:
            yield archive_files.seal_read(directory / archive_files.seal_name(number))

    def events():
        for number in numbers:
            path = directory / archive_files.events_name(number)
            if path.name in present:
                for values in archive_files.events_read(path):
                    yield _archived(values)

    pending = _Peek(events())
    try:
        last_seq, last_mac = _walk(
            seals=seals(),
            events=pending,
            ring=ring,
            report=report,
            seq=first,
            prev=GENESIS if first == 1 else None,
        )
        while (event := pending.take()) is not None:
            report.add("inserted", f"event {event['id']} is in the archive but in no seal")
    except archive_files.ArchiveError as exc:
        report.add("unreadable", str(exc))
        return report
    report.notes.append(f"the archive ends at seal {last_seq - 1} (MAC {last_mac[:16]}…)")
    return report


def _archived(values: dict) -> dict:
    if set(values) != set(COLUMNS) or not isinstance(values.get("id"), int):
        return {"id": values.get("id") if isinstance(values.get("id"), int) else -1}
    return values


@dataclass(frozen=True)
class Filters:
    actor: str = ""
    action: str = ""
    target: str = ""
    since: datetime | None = None
    until: datetime | None = None

    def match(self, event: dict) -> bool:
        if self.actor and self.actor.casefold() not in str(event["actor_label"]).casefold():
            return False
        action = str(event["action"])
        if self.action and action != self.action and not action.startswith(self.action + "."):
            return False
        if self.target and not (
            self.target.casefold() in str(event["target_label"]).casefold()
            or self.target == str(event["target_id"])
        ):
            return False
        if self.since or self.until:
            try:
                at = datetime.fromisoformat(event["created_at"])
                if (self.since and at < self.since) or (self.until and at >= self.until):
                    return False
            except (TypeError, ValueError):
                return False  # not a time: verify reports the line
        return True


def archive_search(*, directory: Path, filters: Filters) -> Iterator[dict]:
    """The archived events that match, oldest file first, streamed from the
    gzip files (no database, nothing restored). Not a verification: run
    `audit verify --archive` for that."""
    if not directory.is_dir():
        raise archive_files.ArchiveError(f"{directory} is not a directory")
    for path in sorted(directory.glob("events-*.jsonl.gz")):
        for values in archive_files.events_read(path):
            if set(FIELDS) <= set(values) and filters.match(values):
                yield values
