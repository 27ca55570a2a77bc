"""One access write per action: a nested write joins the outer one.

A service that runs inside another's write (SCIM's write around the account
service's, say) takes the lock once; the root invariant (`managers_remain`)
is read once on entry and once at the outermost exit, and an inner refusal
rolls the whole write back and is audited once. What a whole SCIM
deactivation costs is measured by tests/test_scim_cost.py.
"""

from __future__ import annotations

import contextlib

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.audit import Actor
from accounts.models import AuditEvent
from tests.factories import GroupFactory, RoleFactory, RuleFactory, UserFactory

pytestmark = pytest.mark.django_db


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
            and "grant_approval" not in s
            for s in sql
        ),
        # four_eyes_split: the same rows with the groups' approval settings
        "four_eyes": sum(s.startswith("SELECT") and "grant_approval" in s for s in sql),
        "audit_insert": sum(s.startswith('INSERT INTO "accounts_auditevent"') for s in sql),
    }


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
    # No group needs four eyes: read once, at the start, and not again.
    assert counted["four_eyes"] == 1
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
