"""Retention and archive of the audit trail (trail/): sealed batches past
IAM_AUDIT_RETENTION_DAYS leave the table for gzip JSON Lines files with
their seals and a SHA-256 manifest; `audit verify --archive` checks them,
`audit search --archive` reads them back without the database."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from django.utils import timezone

from accounts.audit import AuditAction
from accounts.models import AuditEvent
from tests.support.trail import make_events, run
from trail.models import AuditAnchor, AuditSeal
from trail.services import ArchiveRefused, audit_archive, audit_seal_pending

pytestmark = pytest.mark.django_db


@pytest.fixture
def retention(sealing, tmp_path):
    sealing.IAM_AUDIT_RETENTION_DAYS = 30
    sealing.IAM_AUDIT_ARCHIVE_DIR = str(tmp_path / "archive")
    (tmp_path / "archive").mkdir()
    sealing.IAM_AUDIT_SEAL_BATCH = 4
    return tmp_path / "archive"


def maintain() -> str:
    out = StringIO()
    try:
        call_command("maintenance", "--once", stdout=out)
    except CommandError as exc:
        return out.getvalue() + str(exc)
    return out.getvalue()


@pytest.fixture
def archived(retention):
    """8 old events (two sealed batches) archived, 3 recent ones kept."""
    old = make_events(8, days_ago=40)
    recent = make_events(3)
    out = maintain()
    assert "audit_archive: 8 removed" in out
    return old, recent, retention


def test_old_sealed_batches_move_to_the_archive_and_both_verify(archived):
    old, recent, directory = archived
    assert not AuditEvent.objects.filter(pk__in=old).exists()
    assert set(AuditEvent.objects.filter(pk__in=recent).values_list("pk", flat=True)) == set(recent)
    assert sorted(p.name for p in directory.iterdir()) == [
        "MANIFEST.json",
        "events-000000000001.jsonl.gz",
        "events-000000000002.jsonl.gz",
        "seal-000000000001.json",
        "seal-000000000002.json",
    ]
    lines = gzip.decompress((directory / "events-000000000001.jsonl.gz").read_bytes()).splitlines()
    first = json.loads(lines[0])
    assert first["id"] == old[0] and first["details"]["z"] == {"a": [2, 3.5], "b": 1}
    assert (
        lines[0]
        == json.dumps(first, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    )
    event = AuditEvent.objects.get(action=AuditAction.AUDIT_ARCHIVED)
    assert event.details["events"] == 8 and event.details["seals"] == "1-2"
    assert AuditAnchor.objects.get().seq == 2
    status, out = run("verify", "--archive", str(directory))
    assert status == 0, out
    assert (
        "8 events in 2 seals verified" in out and "database continues after archived seal 2" in out
    )
    # The trail in the database chains on from the archived seal.
    audit_seal_pending()
    status, out = run("verify")
    assert status == 0, out
    assert "the chain continues from archived seal 2" in out


def test_a_later_run_adds_to_the_archive_and_it_still_verifies(archived):
    _, recent, directory = archived
    assert audit_archive(now=timezone.now() + timedelta(days=31)) == 3
    assert not AuditEvent.objects.filter(pk__in=recent).exists()
    status, out = run("verify", "--archive", str(directory))
    assert status == 0, out
    assert "11 events in 3 seals verified" in out


def test_an_edited_archived_line_is_reported(archived):
    old, _, directory = archived
    path = directory / "events-000000000002.jsonl.gz"
    lines = gzip.decompress(path.read_bytes()).splitlines()
    event = json.loads(lines[1])
    event["target_label"] = "someone-else@shop.example"
    lines[1] = json.dumps(event).encode()
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    status, out = run("verify", "--archive", str(directory))
    assert status == 1
    assert "archive: events-000000000002.jsonl.gz differs from its SHA-256 in the manifest" in out
    assert f"changed: event {old[5]} was changed after seal 2" in out


def test_a_removed_file_is_reported(archived):
    old, _, directory = archived
    (directory / "events-000000000001.jsonl.gz").unlink()
    status, out = run("verify", "--archive", str(directory))
    assert status == 1
    assert "archive: events-000000000001.jsonl.gz is missing (the manifest lists it)" in out
    assert f"missing: event {old[0]} is missing (sealed by seal 1)" in out


def test_a_removed_seal_file_is_reported(archived):
    _, _, directory = archived
    (directory / "seal-000000000001.json").unlink()
    status, out = run("verify", "--archive", str(directory))
    assert status == 1 and "seal-000000000001.json is missing" in out


def test_an_edited_manifest_is_reported(archived):
    _, _, directory = archived
    manifest = json.loads((directory / "MANIFEST.json").read_text())
    manifest["files"]["events-000000000001.jsonl.gz"] = "0" * 64
    (directory / "MANIFEST.json").write_text(json.dumps(manifest))
    status, out = run("verify", "--archive", str(directory))
    assert status == 1
    assert "archive: MANIFEST.json does not match its MAC (edited)" in out


def test_an_edited_archived_seal_is_reported(archived):
    _, _, directory = archived
    path = directory / "seal-000000000002.json"
    seal = json.loads(path.read_text())
    seal["count"] = 3
    path.write_text(json.dumps(seal))
    status, out = run("verify", "--archive", str(directory))
    assert status == 1 and "seal: seal 2 is broken" in out


def test_a_broken_gzip_file_is_one_line(archived):
    _, _, directory = archived
    (directory / "events-000000000002.jsonl.gz").write_bytes(b"not gzip at all")
    status, out = run("verify", "--archive", str(directory))
    assert status == 1 and "events-000000000002.jsonl.gz cannot be read" in out
    assert "Traceback" not in out


def test_search_reads_the_archive_without_the_database(archived, django_assert_num_queries):
    old, _, directory = archived
    out = StringIO()
    with django_assert_num_queries(0):
        call_command(
            "audit",
            "search",
            "--archive",
            str(directory),
            "--target",
            "person5@",
            stdout=out,
            stderr=StringIO(),
        )
    found = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [event["id"] for event in found] == [old[5]]
    out = StringIO()
    call_command(
        "audit",
        "search",
        "--archive",
        str(directory),
        "--action",
        "user",
        "--actor",
        "TESTER",
        stdout=out,
        stderr=StringIO(),
    )
    assert len(out.getvalue().splitlines()) == 8
    out = StringIO()
    call_command(
        "audit",
        "search",
        "--archive",
        str(directory),
        "--since",
        "2999-01-01",
        stdout=out,
        stderr=StringIO(),
    )
    assert out.getvalue() == ""


def test_a_tampered_batch_is_refused_and_nothing_is_removed(retention):
    old = make_events(8, days_ago=40)
    audit_seal_pending()
    AuditEvent.objects.filter(pk=old[6]).update(target_label="hidden")
    out = maintain()
    assert "maintenance jobs failed: audit_archive" in out
    # The first batch was intact and went; the tampered one stays, as evidence.
    assert AuditEvent.objects.filter(pk__in=old[4:]).count() == 4
    assert not (retention / "events-000000000002.jsonl.gz").exists()
    assert run("verify")[0] == 1


def test_a_file_that_cannot_be_written_removes_nothing(retention):
    old = make_events(4, days_ago=40)
    audit_seal_pending()
    (retention / "events-000000000001.jsonl.gz").mkdir()  # in the way of the file
    with pytest.raises(OSError):
        audit_archive()
    assert AuditEvent.objects.filter(pk__in=old).count() == 4
    assert AuditSeal.objects.count() == 1 and not AuditAnchor.objects.exists()


def test_unsealed_events_are_never_archived(retention):
    old = make_events(4, days_ago=40)
    assert audit_archive() == 0
    assert AuditEvent.objects.filter(pk__in=old).count() == 4


def test_a_tampered_manifest_stops_the_next_run(archived):
    _, _, directory = archived
    (directory / "MANIFEST.json").write_text(
        '{"format": "iam-audit-archive/1", "key_id": "x", "files": {}, "mac": "y"}'
    )
    make_events(4, days_ago=40)
    audit_seal_pending()
    with pytest.raises(ArchiveRefused):
        audit_archive()


def test_without_retention_nothing_is_archived(sealing):
    make_events(4, days_ago=4000)
    audit_seal_pending()
    assert audit_archive() == 0 and AuditEvent.objects.count() == 4


def test_retention_without_a_usable_directory_stops_start_up(settings, tmp_path):
    settings.IAM_AUDIT_RETENTION_DAYS = 30
    settings.IAM_AUDIT_ARCHIVE_DIR = ""
    with pytest.raises(SystemCheckError, match="IAM_AUDIT_ARCHIVE_DIR must name"):
        call_command("check")
    settings.IAM_AUDIT_ARCHIVE_DIR = str(tmp_path / "absent")
    with pytest.raises(SystemCheckError, match="is not a writable directory"):
        call_command("check")
    settings.IAM_AUDIT_RETENTION_DAYS = 0
    with pytest.raises(SystemCheckError, match="at least 1"):
        call_command("check")


def test_archive_files_are_not_world_readable(archived):
    _, _, directory = archived
    assert {oct(path.stat().st_mode & 0o777) for path in directory.iterdir()} == {"0o640"}


def test_search_skips_a_line_whose_time_is_not_a_time(archived):
    _, _, directory = archived
    path = directory / "events-000000000001.jsonl.gz"
    lines = gzip.decompress(path.read_bytes()).splitlines()
    event = json.loads(lines[0])
    event["created_at"] = 12
    lines[0] = json.dumps(event).encode()
    path.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    status, out = run("search", "--archive", str(directory), "--since", "2000-01-01")
    assert status == 0 and "7 events found" in out


def test_an_anchor_moved_without_archiving_is_reported(retention):
    """Someone deletes the oldest seals and events and writes an anchor
    naming a real seal (its header and MAC, read from the database): the
    archive lacks that seal."""
    from trail.seals import header, of_row

    ids = make_events(12, days_ago=40)
    audit_seal_pending()
    second = AuditSeal.objects.get(seq=2)
    AuditAnchor.objects.create(
        pk=1,
        seq=2,
        mac=second.mac,
        last_event_id=second.last_event_id,
        header=header(of_row(second)).decode(),
        archived_at=timezone.now(),
    )
    AuditSeal.objects.filter(seq__lte=2).delete()
    AuditEvent.objects.filter(pk__in=ids[:8]).delete()
    status, out = run("verify")
    assert status == 1
    assert "archived seal 2, where the database's chain continues, is not in" in out


def test_seals_made_with_a_retired_key_still_verify(archived, sealing):
    _, _, directory = archived
    old_key = sealing.IAM_AUDIT_SEAL_KEY
    sealing.IAM_AUDIT_SEAL_KEY = "the-new-key-" + "n" * 32
    assert run("verify", "--archive", str(directory))[0] == 1
    sealing.IAM_AUDIT_SEAL_OLD_KEYS = [old_key]
    make_events(2)
    audit_seal_pending()  # sealed with the new key, chained to the old seals
    status, out = run("verify")
    assert status == 0, out
    # A later archive run accepts the manifest made with the old key, and
    # writes it anew with the new one.
    sealed = AuditEvent.objects.count()
    assert audit_archive(now=timezone.now() + timedelta(days=31)) == sealed
    assert run("verify", "--archive", str(directory))[0] == 0
    sealing.IAM_AUDIT_SEAL_OLD_KEYS = []
    status, out = run("verify", "--archive", str(directory))
    assert status == 1 and "key: seal 1 was made with key id" in out


def test_a_seal_file_with_wrong_types_is_one_line(archived):
    _, _, directory = archived
    path = directory / "seal-000000000001.json"
    seal = json.loads(path.read_text())
    seal["first_at"] = 12
    path.write_text(json.dumps(seal))
    status, out = run("verify", "--archive", str(directory))
    assert status == 1 and "seal-000000000001.json cannot be read as a seal" in out
    assert "Traceback" not in out


def test_a_run_archives_at_most_its_share_of_batches(retention):
    make_events(12, days_ago=40)
    audit_seal_pending()
    assert audit_archive(max_batches=2) == 8
    assert AuditAnchor.objects.get().seq == 2 and AuditSeal.objects.count() == 1
    assert audit_archive() == 4
