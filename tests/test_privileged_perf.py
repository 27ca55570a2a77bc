"""Privileged access costs no SQL while nothing has ended (issue 23,
"Performance"): the ends travel with the compiled rules, so a warm check of
a person with a time-bound membership and an active activation is free, and
the warm dashboard makes as many statements for them as for a standing root
member. At an end, the next check compiles again (one query) without any
write, and the rights are gone."""

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.access import can
from accounts.models import Membership, User
from tests.conftest import login
from tests.factories import PASSWORD, GroupFactory, RoleFactory, RuleFactory, UserFactory

pytestmark = pytest.mark.django_db


def _time_bound_root():
    """Root until tomorrow, and an activation of `ops` (audit log) for 2 h."""
    role = RoleFactory(name="auditor")
    RuleFactory(role=role, pattern="backoffice:audit:*")
    ops = GroupFactory(name="ops", roles=[role], eligible_only=True)
    person = UserFactory(email="temp@shop.example", groups=["root", ops])
    Membership.objects.filter(user=person, group__name="root").update(
        ends_at=timezone.now() + timedelta(days=1)
    )
    Membership.objects.filter(user=person, group=ops).update(
        active_until=timezone.now() + timedelta(hours=2)
    )
    return person


def _warm_dashboard_statements(client, email) -> list[str]:
    login(client, email, PASSWORD)
    assert client.get("/").status_code == 200  # warms the compiled rules
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/").status_code == 200
    return [q["sql"] for q in captured.captured_queries]


def test_a_warm_check_with_ends_costs_no_query(django_assert_num_queries):
    person = _time_bound_root()
    assert can(person, "backoffice:users:delete")
    fresh = User.objects.get(pk=person.pk)  # as on the next request
    with django_assert_num_queries(0):
        assert can(fresh, "backoffice:users:delete")
        assert can(fresh, "backoffice:audit:export")


def test_the_warm_dashboard_costs_the_same_with_ends_as_standing(client, root_user):
    standing = _warm_dashboard_statements(client, root_user.email)
    client.logout()
    bound = _warm_dashboard_statements(client, _time_bound_root().email)
    assert len(bound) == len(standing), "\n".join(bound)
    assert not [sql for sql in bound if "accounts_membership" in sql], bound


def test_at_its_end_the_next_check_compiles_again_and_the_rights_are_gone(
    django_assert_num_queries,
):
    person = UserFactory(email="short@shop.example", groups=["root"])
    Membership.objects.filter(user=person).update(ends_at=timezone.now() + timedelta(seconds=1))
    assert can(User.objects.get(pk=person.pk), "backoffice:users:view")
    fresh = User.objects.get(pk=person.pk)
    with django_assert_num_queries(0):
        assert can(fresh, "backoffice:users:view")
    time.sleep(1.1)
    fresh = User.objects.get(pk=person.pk)  # same access stamp: no write happened
    with django_assert_num_queries(1):
        assert not can(fresh, "backoffice:users:view")
    fresh = User.objects.get(pk=person.pk)
    with django_assert_num_queries(0):  # warm again, and nothing ends any more
        assert not can(fresh, "backoffice:users:view")
