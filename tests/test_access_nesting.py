"""One access write per action: a nested write joins the outer one.

A SCIM deactivation (PATCH active=false) runs the SCIM service's write, and
inside it the account service's: the lock is taken once, the root invariant
(`managers_remain`) is read once on entry and once at the outermost exit,
and an inner refusal rolls the whole write back and is audited once.

The SQL figure of a SCIM deactivation is printed (run with -s to see it;
SHOW_SQL=1 prints the statements themselves):

    .venv/bin/python -m pytest tests/test_access_nesting.py -q -s -p no:cacheprovider
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/iam_h5 \
        .venv/bin/python -m pytest tests/test_access_nesting.py -q -s -p no:cacheprovider
"""

from __future__ import annotations

import contextlib
import json
import os
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.signals import request_started
from django.db import connection, reset_queries
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.audit import Actor
from accounts.models import AuditEvent, User
from tests.conftest import login
from tests.factories import PASSWORD, GroupFactory, RoleFactory, RuleFactory, UserFactory

pytestmark = pytest.mark.django_db

SCIM = "application/scim+json"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def _statements(queries) -> dict:
    """What a captured write said to the database, by kind."""
    sql = [q["sql"] for q in queries]
    return {
        "total": len(sql),
        "lock": sum("pg_advisory_xact_lock" in s for s in sql),
        # managers_remain's first query: every group's rules (accounts.delegation)
        "managers_remain": sum(
            s.startswith("SELECT")
            and '"accounts_group_roles"."group_id"' in s
            and "IS NOT NULL" in s
            for s in sql
        ),
        "audit_insert": sum(s.startswith('INSERT INTO "accounts_auditevent"') for s in sql),
    }


def _scim_token(name: str = "entra") -> str:
    out = StringIO()
    call_command("scimtoken", "create", "--name", name, stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def test_a_scim_deactivation_takes_the_lock_once_and_reads_the_invariant_twice():
    """PATCH active=false over HTTP with a SCIM token, for a user in two
    groups with a live session: the statements it costs."""
    UserFactory(email="root@shop.example", groups=["root"])
    staff = GroupFactory(name="staff", roles=[RuleFactory(pattern="backoffice:dashboard:*").role])
    viewers = GroupFactory(
        name="viewers", roles=[RuleFactory(pattern="backoffice:users:view").role]
    )
    person = UserFactory(email="leaver@shop.example", groups=[staff, viewers])
    browser = Client()
    assert login(browser, person.email, PASSWORD).status_code == 302
    token = _scim_token()
    idp = Client()
    body = {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
    }
    # Django empties the query log when a request starts: keep it for the count.
    request_started.disconnect(reset_queries)
    try:
        with CaptureQueriesContext(connection) as captured:
            response = idp.patch(
                f"/scim/v2/Users/{person.pk}",
                data=json.dumps(body),
                content_type=SCIM,
                HTTP_AUTHORIZATION=f"Bearer {token}",
            )
        queries = captured.captured_queries
    finally:
        request_started.connect(reset_queries)
    assert response.status_code == 200, response.content
    person.refresh_from_db()
    assert person.status == User.Status.BLOCKED
    assert browser.get("/").status_code == 302  # the live session ended
    counted = _statements(queries)
    print(f"\nSCIM deactivation on {connection.vendor}: {json.dumps(counted)}")
    if os.environ.get("SHOW_SQL"):
        print("\n".join(q["sql"] for q in queries))
    assert counted["lock"] == (1 if connection.vendor == "postgresql" else 0)
    assert counted["managers_remain"] == 2  # on entry, and at the outermost exit
    # Before the nested write joined the outer one: 46 on SQLite, 47 on
    # PostgreSQL (the lock twice, managers_remain four times, four events).
    assert counted["total"] <= 37
    # Only what changes is written: never a password hash read earlier.
    updates = [q["sql"] for q in queries if q["sql"].startswith('UPDATE "accounts_user"')]
    assert updates and not any('"password"' in sql for sql in updates)
    # The account service writes one event for the block (SCIM's own
    # events are SCIM's: scim/services.py).
    assert AuditEvent.objects.filter(action="user.blocked").count() == 1
    assert not AuditEvent.objects.filter(action="user.updated").exists()


# --- nesting, at the services ------------------------------------------------------


def _rooted():
    return UserFactory(email="root@shop.example", groups=["root"])


def test_a_nested_write_joins_the_outer_one():
    from accounts.delegation import access_write

    root = _rooted()
    by = Actor(user=root)
    with (
        CaptureQueriesContext(connection) as captured,
        access_write(by=by) as outer,
        access_write(by=by) as inner,
    ):
        assert inner is outer
        with access_write(by=by) as innermost:
            assert innermost is outer
    counted = _statements(captured.captured_queries)
    assert counted["managers_remain"] == 2
    assert counted["lock"] == (1 if connection.vendor == "postgresql" else 0)


def test_a_nested_write_of_another_actor_gets_its_own_writer_and_the_same_lock():
    from accounts.delegation import ALL, access_write

    root = _rooted()
    with (
        CaptureQueriesContext(connection) as captured,
        access_write(by=Actor.system(label="cli")) as outer,
        access_write(by=Actor(user=root)) as inner,
    ):
        assert inner is not outer and inner.by.user == root
        assert inner.permissions == ALL
    counted = _statements(captured.captured_queries)
    assert counted["managers_remain"] == 2
    assert counted["lock"] == (1 if connection.vendor == "postgresql" else 0)


def test_an_inner_refusal_rolls_back_the_whole_write_and_is_audited_once():
    from accounts import services
    from accounts.delegation import access_write

    _rooted()
    role = RoleFactory(name="user-admin")
    RuleFactory(role=role, pattern="backoffice:users:*")
    admins = GroupFactory(name="user-admins", roles=[role])
    admin = UserFactory(email="admin@shop.example", groups=[admins])
    boss = UserFactory(email="boss@shop.example", groups=["root"])
    by = Actor(user=admin)
    with pytest.raises(services.AccessRefused) as refused, access_write(by=by, target=boss):
        services.user_update(
            user=admin,
            email=admin.email,
            first_name="Renamed",
            last_name=admin.last_name,
            groups=list(admin.groups.all()),
            active=True,
            by=by,
        )
        services.user_set_status(user=boss, active=False, by=by)
    assert refused.value.code == "rank"
    admin.refresh_from_db()
    assert admin.first_name != "Renamed"  # the first, allowed part is rolled back too
    refusals = AuditEvent.objects.filter(action="access.grant_refused")
    assert refusals.count() == 1
    assert refusals.get().details["reason"] == "rank"
    assert not AuditEvent.objects.filter(action="user.updated").exists()


def test_an_inner_refusal_caught_inside_the_outer_write_still_refuses_it():
    from accounts import services
    from accounts.delegation import access_write

    _rooted()
    role = RoleFactory(name="user-admin")
    RuleFactory(role=role, pattern="backoffice:users:*")
    admins = GroupFactory(name="user-admins", roles=[role])
    admin = UserFactory(email="admin@shop.example", groups=[admins])
    boss = UserFactory(email="boss@shop.example", groups=["root"])
    by = Actor(user=admin)
    # A caller that swallows the refusal does not commit the write.
    with (
        pytest.raises(services.AccessRefused),
        access_write(by=by),
        contextlib.suppress(services.AccessRefused),
    ):
        services.user_set_status(user=boss, active=False, by=by)
    boss.refresh_from_db()
    assert boss.is_active
    assert AuditEvent.objects.filter(action="access.grant_refused").count() == 1


def test_the_self_demotion_check_runs_at_the_outermost_exit():
    """Taking a group from oneself and giving it back in the same write is no
    loss: the check looks at the end of the whole write."""
    from accounts import services
    from accounts.delegation import access_write

    _rooted()
    role = RoleFactory(name="user-admin")
    RuleFactory(role=role, pattern="backoffice:users:*")
    admins = GroupFactory(name="user-admins", roles=[role])
    admin = UserFactory(email="admin@shop.example", groups=[admins])
    by = Actor(user=admin)

    def groups(listed):
        return services.user_update(
            user=admin,
            email=admin.email,
            first_name=admin.first_name,
            last_name=admin.last_name,
            groups=listed,
            active=True,
            by=by,
        )

    with access_write(by=by):
        groups([])
        groups([admins])
    assert admin.groups.filter(pk=admins.pk).exists()
    with pytest.raises(services.AccountError) as lost:
        groups([])
    assert lost.value.code == "self"
