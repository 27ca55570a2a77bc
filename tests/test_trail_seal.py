"""Tamper evidence of the audit trail (trail/): events are sealed in
batches after they are written; `manage.py audit verify` finds every edit
made behind the application's back (straight SQL) and says which, in one
line, with a non-zero exit."""

from __future__ import annotations

import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.audit import AuditAction, audit
from accounts.models import AuditEvent, User
from tests.conftest import login
from tests.factories import PASSWORD, UserFactory
from tests.support.pg import postgres_only
from tests.support.trail import make_events, run, sql
from trail.canonical import FIELDS
from trail.models import AuditSeal
from trail.services import audit_seal_pending

pytestmark = pytest.mark.django_db


def sealed(count: int = 6, *, batch: int = 3) -> list[int]:
    ids = make_events(count)
    from django.conf import settings

    settings.IAM_AUDIT_SEAL_BATCH = batch
    assert audit_seal_pending() == count
    return ids


def test_a_clean_trail_verifies_and_says_what_is_not_sealed_yet(sealing):
    sealed(6)
    sealing.IAM_AUDIT_SEAL_SETTLE_SECONDS = 300
    make_events(2)  # just written: not settled, not sealed
    status, out = run("verify")
    assert status == 0, out
    assert "audit trail OK: 6 events in 2 seals verified, 2 newer events not yet sealed" in out
    assert AuditSeal.objects.count() == 2


def test_a_deleted_event_is_reported_as_missing(sealing):
    ids = sealed()
    sql("DELETE FROM {table} WHERE id = %s", [ids[4]])
    status, out = run("verify")
    assert status == 1
    assert f"missing: event {ids[4]} is missing (sealed by seal 2)" in out
    assert "NOT verified" in out and "Traceback" not in out


@pytest.mark.parametrize(
    ("column", "value"),
    [("target_label", "someone-else@shop.example"), ("outcome", "failure"), ("ip", "198.51.100.1")],
)
def test_an_edited_column_is_reported_as_changed(sealing, column, value):
    ids = sealed()
    sql(f"UPDATE {{table}} SET {column} = %s WHERE id = %s", [value, ids[1]])
    status, out = run("verify")
    assert status == 1
    assert f"changed: event {ids[1]} was changed after seal 1" in out


def test_edited_details_and_time_are_reported_as_changed(sealing):
    ids = sealed()
    AuditEvent.objects.filter(pk=ids[0]).update(details={"last_name": ["Old", "Forged"]})
    AuditEvent.objects.filter(pk=ids[5]).update(created_at=timezone.now() - timedelta(days=3))
    status, out = run("verify")
    assert status == 1
    assert f"changed: event {ids[0]} was changed after seal 1 (and 1 more of this kind)" in out


def test_swapped_rows_are_reported_as_reordered(sealing):
    ids = sealed()
    first, second = (
        AuditEvent.objects.filter(pk=pk).values(*[f for f in FIELDS if f != "ip"], "ip").get()
        for pk in (ids[0], ids[2])
    )
    AuditEvent.objects.filter(pk=ids[0]).update(**second)
    AuditEvent.objects.filter(pk=ids[2]).update(**first)
    status, out = run("verify")
    assert status == 1
    assert f"reordered: event {ids[0]} holds what seal 1 sealed as event {ids[2]}" in out


def test_a_forged_row_inside_a_sealed_range_is_reported_as_inserted(sealing):
    ids = make_events(6)
    AuditEvent.objects.filter(pk=ids[3]).delete()  # a rolled-back write leaves such a gap
    sealing.IAM_AUDIT_SEAL_BATCH = 10
    audit_seal_pending()
    # Afterwards, someone writes an event into the gap (or a transaction
    # commits long after its id was taken).
    forged = AuditEvent.objects.filter(pk=ids[2]).values(*FIELDS).get()
    AuditEvent.objects.create(id=ids[3], **forged)
    status, out = run("verify")
    assert status == 1
    assert f"inserted: event {ids[3]} lies in the range of seal 1 but is not sealed by it" in out


@pytest.mark.parametrize("column", ["count", "last_at", "events_hash", "prev_mac", "tags"])
def test_an_edited_seal_is_reported_as_broken(sealing, column):
    sealed()
    seal = AuditSeal.objects.get(seq=2)
    values = {
        "count": seal.count - 1,
        "last_at": seal.last_at - timedelta(days=1),
        "events_hash": "0" * 64,
        "prev_mac": "1" * 64,
        "tags": bytes(len(seal.tags)),
    }
    AuditSeal.objects.filter(pk=seal.pk).update(**{column: values[column]})
    status, out = run("verify")
    assert status == 1
    assert "seal: seal 2" in out


def test_a_seal_remade_over_edited_events_without_the_key_does_not_verify(sealing):
    """Whoever edits the database cannot seal again: the key is elsewhere."""
    ids = sealed()
    AuditEvent.objects.filter(pk=ids[0]).update(target_label="forged")
    AuditSeal.objects.all().delete()
    sealing.IAM_AUDIT_SEAL_KEY = "the attacker's own key, long enough: " + "x" * 20
    audit_seal_pending()
    sealing.IAM_AUDIT_SEAL_KEY = "test-seal-key-" + "k" * 32
    status, out = run("verify")
    assert status == 1
    assert "key: seal 1 was made with key id" in out


def test_a_deleted_seal_is_reported(sealing):
    sealed(9)
    AuditSeal.objects.filter(seq=2).delete()
    status, out = run("verify")
    assert status == 1
    assert "seal: seal 2 is missing: seal 3 follows seal 1" in out


def test_the_first_seal_deleted_is_reported(sealing):
    sealed(9)
    AuditSeal.objects.filter(seq=1).delete()
    status, out = run("verify")
    assert status == 1
    assert "seal: seal 1 is missing: seal 2 follows seal 0" in out


def test_another_key_is_reported_as_a_key_change_not_as_tampering(sealing):
    sealed()
    sealing.IAM_AUDIT_SEAL_KEY = "a-rotated-key-" + "r" * 32
    status, out = run("verify")
    assert status == 1
    assert "key: seal 1 was made with key id" in out
    assert "a different key, not by itself evidence of tampering" in out
    assert "changed" not in out and "missing" not in out
    assert "test-seal-key" not in out and "rotated-key" not in out  # the key is never printed


def test_the_default_key_is_derived_from_the_secret_key_and_not_stored(settings):
    from trail import keys

    settings.IAM_AUDIT_SEAL_KEY = ""
    derived = keys.seal_key()
    assert derived != settings.SECRET_KEY.encode() and len(derived) == 32
    settings.SECRET_KEY = "another secret key " + "s" * 40
    assert keys.seal_key() != derived


def test_a_user_deleted_after_sealing_keeps_the_trail_intact(sealing, client):
    """Deleting an account sets actor_id NULL on its events (SET_NULL): a
    legitimate change, so actor_id is not sealed; its name (actor_label) is."""
    person = UserFactory(email="leaving@shop.example")
    login(client, person.email, PASSWORD)
    audit_seal_pending()
    assert AuditEvent.objects.filter(actor=person).exists()
    User.objects.filter(pk=person.pk).delete()
    status, out = run("verify")
    assert status == 0, out


def test_since_starts_at_the_seal_covering_that_date(sealing):
    old = make_events(3, days_ago=10)
    sealing.IAM_AUDIT_SEAL_BATCH = 3
    audit_seal_pending()
    make_events(3)
    audit_seal_pending()
    sql("DELETE FROM {table} WHERE id = %s", [old[0]])  # before the date asked
    day = (timezone.now() - timedelta(days=2)).date().isoformat()
    status, out = run("verify", "--since", day)
    assert status == 0, out
    assert "3 events in 1 seals verified" in out and "from seal 2" in out
    assert run("verify")[0] == 1


def test_bad_input_is_one_line_and_exit_1(sealing, tmp_path):
    for args, says in (
        (("verify", "--since", "last tuesday"), "not a date: 'last tuesday'"),
        (("verify", "--archive", str(tmp_path / "none")), "is not a directory"),
        (
            ("verify", "--since", "2026-01-01", "--archive", str(tmp_path)),
            "--since and --expect apply",
        ),
    ):
        status, out = run(*args)
        assert status == 1 and says in out and "Traceback" not in out


def test_writing_an_event_is_still_one_insert(sealing):
    with CaptureQueriesContext(connection) as queries:
        audit(AuditAction.LOGOUT, target_label="someone")
    assert len(queries) == 1
    assert queries[0]["sql"].startswith("INSERT INTO") and "trail_" not in queries[0]["sql"]


def test_a_login_writes_its_event_without_touching_the_seals(sealing, client, user):
    with CaptureQueriesContext(connection) as queries:
        login(client, user.email, PASSWORD)
    statements = [q["sql"] for q in queries]
    inserts = [s for s in statements if s.startswith(f'INSERT INTO "{AuditEvent._meta.db_table}"')]
    assert len(inserts) == 1
    assert not [s for s in statements if "trail_audit" in s]


def test_events_younger_than_the_settle_window_wait(sealing):
    sealing.IAM_AUDIT_SEAL_SETTLE_SECONDS = 300
    make_events(2, days_ago=1)
    make_events(2)
    assert audit_seal_pending() == 2
    assert audit_seal_pending(now=timezone.now() + timedelta(minutes=6)) == 2


def test_the_canonical_form_names_every_column_but_two():
    """A new AuditEvent column must be decided on: sealed (a new version of
    the form) or not. id is bound by position, actor_id is SET_NULL."""
    columns = {f.attname for f in AuditEvent._meta.concrete_fields}
    assert columns - set(FIELDS) == {"id", "actor_id"}


def test_two_seals_after_the_same_seal_cannot_both_be_written(sealing):
    sealed(6)
    last = AuditSeal.objects.get(seq=2)
    copy = {f.attname: getattr(last, f.attname) for f in AuditSeal._meta.concrete_fields}
    copy.pop("id")
    copy.update(seq=3, mac="f" * 64)  # the same link as seal 2's
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditSeal.objects.create(**copy)


def test_maintenance_once_seals(sealing):
    make_events(3)
    call_command("maintenance", "--once", stdout=StringIO())
    assert AuditSeal.objects.get().count == 3
    assert run("verify")[0] == 0


@pytest.mark.django_db(transaction=True)
def test_the_worker_seals(sealing, signals_kept):
    """In real transactions: the worker's loop closes connections."""
    make_events(3)
    call_command("worker", "--batch")
    assert AuditSeal.objects.get().count == 3
    make_events(2)
    call_command("worker", "--batch")
    assert list(AuditSeal.objects.values_list("count", flat=True)) == [3, 2]
    assert run("verify")[0] == 0


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_workers_sealing_at_once_never_seal_a_range_twice(sealing):
    make_events(40)
    sealing.IAM_AUDIT_SEAL_BATCH = 5
    barrier = threading.Barrier(4)
    totals = []

    def worker():
        try:
            barrier.wait()
            totals.append(audit_seal_pending())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(totals) == 40
    ranges = list(AuditSeal.objects.values_list("first_event_id", "last_event_id"))
    covered = [i for first, last in ranges for i in range(first, last + 1)]
    assert len(covered) == len(set(covered)) == 40
    assert run("verify")[0] == 0


def _newest_mac(out: str) -> tuple[int, str]:
    seq, mac = out.split("newest seal ", 1)[1].split(")")[0].split(";")[0].split(" mac=")
    return int(seq), mac.strip()


def test_resealing_after_removing_the_newest_seal_is_caught_by_the_recorded_mac(sealing, caplog):
    """Whoever can write the database can remove the newest seal, edit its
    events and let the worker seal them again: the MAC recorded outside the
    database (the worker's log line, the last verify's summary) shows it."""
    ids = sealed()
    status, out = run("verify")
    seq, mac = _newest_mac(out)
    assert seq == 2 and f"audit seal 2: events {ids[3]}-{ids[5]} (3), mac={mac}" in caplog.text
    AuditSeal.objects.filter(seq=2).delete()
    AuditEvent.objects.filter(pk=ids[4]).update(target_label="rewritten")
    audit_seal_pending()
    assert run("verify")[0] == 0  # on its own, a resealed chain is a chain
    status, out = run("verify", "--expect", f"2:{mac}")
    assert status == 1 and "seal: seal 2 differs from the MAC given (seals replaced)" in out


def test_removed_newest_seals_and_events_are_caught_by_the_recorded_mac(sealing):
    ids = sealed()
    seq, mac = _newest_mac(run("verify")[1])
    AuditSeal.objects.filter(seq=2).delete()
    AuditEvent.objects.filter(pk__in=ids[3:]).delete()
    status, out = run("verify", "--expect", f"{seq}:{mac}")
    assert status == 1 and "seal 2 is gone (the newest seal is 1)" in out
    assert run("verify", "--expect", "2:nothex")[1].startswith("--expect takes SEQ:MAC")


def test_a_worker_that_saw_a_seal_refuses_to_seal_after_it_is_removed(sealing):
    from trail.services import SealChainRewound

    memory: dict = {}
    ids = make_events(6)
    sealing.IAM_AUDIT_SEAL_BATCH = 3
    assert audit_seal_pending(memory=memory) == 6
    AuditSeal.objects.filter(seq=2).delete()
    AuditEvent.objects.filter(pk=ids[4]).update(target_label="rewritten")
    with pytest.raises(SealChainRewound, match="went back from 2 to 1"):
        audit_seal_pending(memory=memory)
    assert AuditSeal.objects.count() == 1
    # Replaced rather than removed: also refused.
    fresh: dict = {}
    audit_seal_pending(memory=fresh)
    AuditSeal.objects.filter(seq=2).update(mac="e" * 64)
    make_events(1)
    with pytest.raises(SealChainRewound, match="seal 2 was removed or replaced"):
        audit_seal_pending(memory=fresh)


def test_an_event_dated_in_the_future_does_not_hold_up_sealing(sealing):
    ids = make_events(3)
    AuditEvent.objects.filter(pk=ids[1]).update(created_at=timezone.now() + timedelta(days=365))
    assert audit_seal_pending() == 3
    assert run("verify")[0] == 0


def test_the_command_line_says_one_line_and_exits_1(tmp_path):
    """As an operator runs it: no traceback, exit status 1."""
    import subprocess
    import sys

    from django.conf import settings

    result = subprocess.run(
        [sys.executable, "manage.py", "audit", "verify", "--archive", str(tmp_path / "gone")],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"CommandError: {tmp_path / 'gone'} is not a directory"
    ]


def test_since_before_the_first_seal_checks_from_the_start(sealing):
    ids = sealed()
    AuditEvent.objects.filter(pk=ids[0]).delete()
    status, out = run("verify", "--since", "2000-01-01")
    assert status == 1 and f"missing: event {ids[0]}" in out


def test_an_event_moved_out_of_its_sealed_range_is_reported_missing(sealing):
    """Moving a sealed row past the newest seal (to have it sealed again,
    edited) leaves its sealed id empty."""
    ids = sealed()
    sql("UPDATE {table} SET id = %s, target_label = %s WHERE id = %s", [ids[-1] + 50, "x", ids[2]])
    audit_seal_pending()
    status, out = run("verify")
    assert status == 1 and f"missing: event {ids[2]} is missing (sealed by seal 1)" in out
