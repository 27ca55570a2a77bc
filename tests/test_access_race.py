"""Two root admins racing to lock root out, on PostgreSQL, through HTTP.

A gives root the role X (allow *:*:*) in place of `administrator`; B empties
X's rules at the same moment. Either request alone is fine in one order and
refused in the other, so with access writes serialised exactly one of the two
succeeds in every round and someone can always manage access. Without the
lock both passed their checks against the state before the other's commit.
"""

import pytest
from django.db import connection

from accounts.delegation import managers_remain
from accounts.models import Group, Role, Rule
from tests.factories import RoleFactory, RuleFactory, UserFactory
from tests.support.people import browser_of
from tests.support.races import race

ROUNDS = 40

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="races need a server database (CI runs it)"
    ),
]


def test_two_root_admins_can_never_lock_root_out(seed_groups):
    root = Group.objects.get(name="root")
    administrator = Role.objects.get(name="administrator")
    x = RoleFactory(name="x")
    a = browser_of(UserFactory(email="a@shop.example", groups=["root"]))
    b = browser_of(UserFactory(email="b@shop.example", groups=["root"]))
    outcomes = []
    for round_ in range(ROUNDS):
        root.roles.set([administrator])
        Rule.objects.filter(role=x).delete()
        RuleFactory(role=x, pattern="*:*:*")
        swap_root = lambda: a.post(f"/groups/{root.pk}/", {"name": "root", "roles": [x.pk]})  # noqa: E731
        empty_x = lambda: b.post(f"/roles/{x.pk}/", {"name": "x", "rules": ""})  # noqa: E731
        pair = (swap_root, empty_x) if round_ % 2 else (empty_x, swap_root)
        statuses = race(*pair)
        assert managers_remain(), f"round {round_}: root locked out ({statuses})"
        # A saved form redirects (302); a refused one is shown again (200).
        assert sorted(statuses) == [200, 302], f"round {round_}: {statuses}"
        outcomes.append(tuple(statuses))
    # Both orders happened: the test raced rather than queued by accident.
    assert len(set(outcomes)) == 2
