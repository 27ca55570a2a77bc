"""The audit trail at scale (issue 24, part 5), in the small: each filter of
the audit screen and of the API costs the same SQL statements with 10 events
as with 200 (benchmarks/audit_scale.py measures 100,000 against 10,000,000);
the text filters match what the screen says and what the indexes serve; the
CSV export has no limit and reads its rows a chunk at a time."""

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client as Http
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import AuditEvent
from tests.api_support import account_token, bearer

pytestmark = pytest.mark.django_db

TODAY = timezone.now().date()
FILTERS = {
    "none": {},
    "actor address": {"actor": "actor1@shop.example"},
    "actor beginning": {"actor": "ACTOR1"},
    "action": {"action": "login.succeeded"},
    "action prefix": {"action": "login."},
    "target address": {"target": "target2@shop.example"},
    "target beginning": {"target": "target"},
    "since": {"since": (TODAY - timedelta(days=2)).isoformat()},
    "until": {"until": TODAY.isoformat()},
    "request id": {"request_id": "req-1"},
    "actor + action + dates": {
        "actor": "actor1@shop.example",
        "action": "login.succeeded",
        "since": (TODAY - timedelta(days=30)).isoformat(),
        "until": TODAY.isoformat(),
    },
    "target + action": {"target": "target2@shop.example", "action": "user.created"},
    "page 2": {"page": "2"},
}
SCREEN_ONLY = {
    "outcome": {"outcome": "failure"},
    "channel": {"channel": "api"},
    "outcome + action": {"outcome": "failure", "action": "login.failed"},
    "channel + actor": {"channel": "api", "actor": "actor1@shop.example"},
}


def add_events(count: int, start: int = 0) -> None:
    """Events that every filter above finds from the first ten on: actors,
    targets, actions, outcomes and channels in turn, a day apart."""
    now = timezone.now()
    actions = ["login.succeeded", "login.failed", "user.created"]
    AuditEvent.objects.bulk_create(
        AuditEvent(
            actor_label=f"actor{n % 2}@shop.example",
            action=actions[n % 3],
            target_type="user",
            target_id=str(n % 3),
            target_label=f"target{n % 3}@shop.example",
            outcome="failure" if n % 3 == 1 else "success",
            channel=["web", "api"][n % 2],
            request_id=f"req-{n % 4}",
            details={"n": n},
        )
        for n in range(start, start + count)
    )
    for n, pk in enumerate(AuditEvent.objects.filter(details__n__gte=start).values_list("pk")):
        AuditEvent.objects.filter(pk=pk[0]).update(created_at=now - timedelta(hours=7 * n))


def statements(get, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = get(path)
    assert response.status_code == 200, (path, response.status_code)
    return len(queries.captured_queries)


def query(filters: dict) -> str:
    from urllib.parse import urlencode

    return urlencode(filters)


def test_each_screen_filter_costs_the_same_statements_at_10_and_200_events(admin):
    add_events(10)
    paths = {name: f"/audit/?{query(f)}" for name, f in {**FILTERS, **SCREEN_ONLY}.items()}
    paths["page 2"] = "/audit/?page=1"  # 10 events have no page 2
    for path in paths.values():
        admin.get(path)  # warm the session and caches
    small = {name: statements(admin.get, path) for name, path in paths.items()}
    for name, path in paths.items():
        body = admin.get(path).content.decode()
        assert "No events match." not in body, name  # every filter finds some
    add_events(190, start=10)
    paths["page 2"] = "/audit/?page=2"
    large = {name: statements(admin.get, path) for name, path in paths.items()}
    assert large == small


def test_each_api_filter_costs_the_same_statements_at_10_and_200_events(root_user):
    http = Http()
    token = account_token(http, root_user)

    def get(path):
        return http.get(path, **bearer(token))

    add_events(10)
    paths = {name: f"/api/v1/audit?{query(f)}" for name, f in FILTERS.items()}
    paths["page 2"] = "/api/v1/audit?page=1"
    for name, path in paths.items():
        assert get(path).json()["results"], name
    small = {name: statements(get, path) for name, path in paths.items()}
    add_events(190, start=10)
    paths["page 2"] = "/api/v1/audit?page=2"
    large = {name: statements(get, path) for name, path in paths.items()}
    assert large == small


def _event(**fields):
    return AuditEvent.objects.create(action=fields.pop("action", "user.updated"), **fields)


def _shown(admin, path: str) -> str:
    return admin.get(path).content.decode().split("<tbody>", 1)[1]


def test_a_whole_address_finds_that_address_only_and_text_finds_beginnings(admin):
    _event(actor_label="bob@shop.example", target_label="Support team")
    _event(actor_label="bob@shop.example.org", target_label="support-2")
    _event(actor_label="robert@shop.example", target_label="ops")
    only_bob = _shown(admin, "/audit/?actor=BOB@Shop.Example")
    assert "bob@shop.example<" in only_bob.replace("<br>", "<")
    assert "bob@shop.example.org" not in only_bob
    assert "robert@" not in only_bob
    both = _shown(admin, "/audit/?actor=bob@")
    assert "bob@shop.example.org" in both and "robert@" not in both
    # A beginning, not any part: "shop.example" is in every address.
    assert "No events match." in _shown(admin, "/audit/?actor=shop.example")
    support = _shown(admin, "/audit/?target=support")
    assert "Support team" in support and "support-2" in support and "ops" not in support


def test_a_known_action_matches_exactly_and_an_unknown_one_as_a_beginning(admin):
    _event(action="mfa.used", target_label="used@shop.example")
    _event(action="mfa.webauthn.added", target_label="added@shop.example")
    _event(action="login.failed", target_label="failed@shop.example")
    mfa = _shown(admin, "/audit/?action=mfa.")
    assert "used@shop.example" in mfa and "added@shop.example" in mfa
    assert "failed@shop.example" not in mfa
    used = _shown(admin, "/audit/?action=mfa.used")
    assert "used@shop.example" in used and "added@shop.example" not in used


def test_the_screen_says_how_actor_and_target_match(admin):
    english = admin.get("/audit/").content.decode()
    assert "a whole email address finds that address only" in english
    german = admin.get("/audit/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Eine vollständige E-Mail-Adresse findet nur diese Adresse" in german


def test_the_export_has_no_limit_and_reads_in_chunks(admin):
    # More than one chunk of the cursor (2,000), every row once, newest first.
    add_events(2_345)
    response = admin.get("/audit/export.csv")
    assert response.status_code == 200 and response.streaming
    with CaptureQueriesContext(connection) as queries:
        body = b"".join(response.streaming_content).decode()
    rows = list(csv.reader(io.StringIO(body)))[1:]
    assert len(rows) == AuditEvent.objects.count()
    assert [r[0] for r in rows] == sorted((r[0] for r in rows), reverse=True)
    assert len({r[10] for r in rows}) == len(rows)  # the details name each event
    if connection.vendor == "postgresql":
        # A plain server-side cursor inside a transaction, not WITH HOLD
        # (which makes PostgreSQL build the whole result first).
        declared = [q["sql"] for q in queries.captured_queries if "DECLARE" in q["sql"].upper()]
        assert declared, "no server-side cursor"
        assert all("WITH HOLD" not in sql.upper() for sql in declared)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner and indexes")
def test_each_filter_is_served_by_its_ordered_index_on_postgresql():
    """What the benchmark's figures rest on: the queries the selector makes
    are the ones the indexes of migration 0013 serve, in the order shown
    (a lookup changed to, say, icontains would fall back to a scan)."""
    from accounts.selectors import audit_search

    add_events(30)
    cases = {
        "auditevent_actor_time": audit_search(actor="actor1@shop.example"),
        "auditevent_target_time": audit_search(target="target2@shop.example"),
        "auditevent_action_time": audit_search(action="login.failed"),
        "auditevent_failure_time": audit_search().filter(outcome="failure"),
        "auditevent_failure_action": audit_search(action="login.failed").filter(outcome="failure"),
        "auditevent_channel_time": audit_search().filter(channel="api"),
        "auditevent_time": audit_search(since=TODAY),
    }
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
    for index, events in cases.items():
        plan = events[:50].explain()
        assert index in plan, (index, plan)
        assert "Sort" not in plan.replace("Sort Key", ""), (index, plan)
    # A beginning is a range of the same index (then its matches are sorted).
    beginning = audit_search(actor="actor1").order_by().explain()
    assert "Index Cond: ((upper((actor_label)::text) ~>=~ 'ACTOR1'" in beginning, beginning


def test_the_audit_screen_and_api_never_count_the_trail(admin, root_user):
    """Counting to 10,000 of two filters that each match millions scans
    millions of rows: the pages read one row more than they show instead."""
    add_events(60)
    http = Http()
    token = account_token(http, root_user)
    for get, path in (
        (admin.get, "/audit/?channel=api&action=login.succeeded"),
        (lambda p: http.get(p, **bearer(token)), "/api/v1/audit?action=login.succeeded"),
    ):
        get(path)
        with CaptureQueriesContext(connection) as queries:
            assert get(path).status_code == 200
        counted = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
        assert "accounts_auditevent" not in " ".join(counted), counted


def test_the_screen_pages_newer_and_older_without_a_total(admin):
    add_events(120)
    first = admin.get("/audit/").content.decode()
    assert "Events 1–50, newest first" in first
    assert "page=2" in first and "Newer" not in first
    third = admin.get("/audit/?page=3").content.decode()
    assert "Events 101–" in third and "page=2" in third and "page=4" not in third
    german = admin.get("/audit/?page=2", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "Ereignisse 51–100, neueste zuerst" in german and "Ältere" in german
    # Junk or out-of-range page numbers are a page, never a 500.
    for junk in ("abc", "-4", "0", "99999999999999999999"):
        assert admin.get(f"/audit/?page={junk}").status_code == 200


def test_the_last_page_number_asks_for_a_narrower_search(admin, monkeypatch):
    from iam.paging import UncountedPage

    monkeypatch.setattr(UncountedPage, "MAX_PAGE", 2)
    add_events(120)
    last = admin.get("/audit/?page=2").content.decode()
    assert "narrow the search" in last and "page=3" not in last
    assert "narrow the search" not in admin.get("/audit/?page=1").content.decode()


def test_the_api_audit_pages_follow_next_and_end(root_user):
    add_events(60)
    http = Http()
    token = account_token(http, root_user)
    first = http.get("/api/v1/audit", **bearer(token)).json()
    assert first["count"] is None and first["pages"] is None
    assert len(first["results"]) == 50 and first["next"].endswith("page=2")
    second = http.get(first["next"], **bearer(token)).json()
    assert second["next"] is None and second["previous"].endswith("page=1")
    assert len(second["results"]) == AuditEvent.objects.count() - 50
    for beyond in (3, 201):
        answer = http.get(f"/api/v1/audit?page={beyond}", **bearer(token))
        assert answer.status_code == 404, beyond


@pytest.mark.django_db(transaction=True)
def test_the_index_migration_goes_back_and_forth_keeping_every_event():
    """0013 through the real `manage.py migrate`, down and up again: the
    events stay, the old single-column indexes come back and go again (by
    introspection, whatever they were named), on both databases."""
    from django.core.management import call_command

    add_events(12)
    table = AuditEvent._meta.db_table

    def indexes() -> set[str]:
        with connection.cursor() as cursor:
            found = connection.introspection.get_constraints(cursor, table)
        return {name for name, info in found.items() if info["index"]}

    new = {"auditevent_time", "auditevent_failure_time", "auditevent_about_time"}
    assert new <= indexes()
    try:
        call_command("migrate", "accounts", "0012", verbosity=0)
        back = indexes()
        assert not new & back
        singles = {
            tuple(info["columns"])
            for info in connection.introspection.get_constraints(
                connection.cursor(), table
            ).values()
            if info["index"]
        }
        assert {("created_at",), ("action",), ("target_label",)} <= singles
    finally:
        call_command("migrate", "accounts", verbosity=0)
    assert new <= indexes()
    assert AuditEvent.objects.count() == 12
    if connection.vendor == "postgresql":
        assert {"auditevent_actor_time", "auditevent_target_time"} <= indexes()


def test_wildcards_in_a_filter_are_text(admin):
    """A beginning is matched with LIKE: % and _ typed in must match
    themselves, not every name (and the whole-address test cannot be
    fooled into a pattern either)."""
    _event(actor_label="bob@shop.example", target_label="ops")
    for text in ("%", "_", "%@%.%", "b_b@shop.example", "%25"):
        body = _shown(admin, f"/audit/?actor={text}")
        assert "bob@shop.example" not in body, text
        assert "ops" not in _shown(admin, f"/audit/?target={text}"), text
