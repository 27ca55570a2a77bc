"""What SCIM requests cost in SQL statements, through HTTP.

- One deactivation (Entra's PATCH active "False" of a user in two groups
  with a live session): its statements are printed (`-s` shows them) and
  bounded, with one access lock, one root-invariant check before and after
  (managers_remain), and one audit event.
- A membership PATCH costs the same number of statements whatever the
  size of the group.

Run on PostgreSQL with DATABASE_URL=postgres://… to see its count.
"""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import AuditEvent, User
from scim.models import Account
from scim.models import Client as ScimClient
from scim.models import Group as ScimGroup
from tests.conftest import login
from tests.factories import GroupFactory, UserFactory
from tests.support.scim import Scim, entra_group, entra_patch, entra_user, make_token

pytestmark = pytest.mark.django_db

# The first statement of accounts.delegation.managers_remain (the root invariant).
MANAGERS_REMAIN = 'SELECT "accounts_group_roles"."group_id" AS "group_id", "accounts_rule"."effect"'


def _statements(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries]


def _print(title, statements):
    print(f"\n{title}: {len(statements)} SQL statements ({connection.vendor})")
    for n, sql in enumerate(statements, 1):
        print(f"  {n:3d}. {sql[:160]}")


@pytest.fixture
def deactivation(client, password):
    """A SCIM-provisioned user in two groups (given by the map), with a live
    browser session, and the PATCH that deactivates them."""
    GroupFactory(name="staff-a")
    GroupFactory(name="staff-b")
    UserFactory(email="boss@shop.example", groups=["root"])
    scim = Scim(client, make_token(group_map={"A": "staff-a", "B": "staff-b"}))
    pk = scim.post("Users", entra_user("leaver@shop.example", external_id="e-leaver")).json()["id"]
    for name in ("A", "B"):
        assert scim.post("Groups", entra_group(name, [pk], external_id=name)).status_code == 201
    person = User.objects.get(pk=pk)
    assert set(person.groups.values_list("name", flat=True)) == {"staff-a", "staff-b"}
    person.set_password(password)  # its own account: a password set since
    person.save()
    browser = Client()
    assert login(browser, person.email, password).status_code == 302
    assert browser.get("/").status_code == 200
    body = entra_patch({"op": "Replace", "path": "active", "value": "False"})
    return scim, person, browser, body


def test_one_deactivation_statements(deactivation):
    scim, person, browser, body = deactivation
    first_event = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
    with CaptureQueriesContext(connection) as captured:
        response = scim.patch(f"Users/{person.pk}", body)
    assert response.status_code == 200, response.content
    statements = _statements(captured)
    _print("SCIM deactivation", statements)
    person.refresh_from_db()
    assert not person.is_active
    assert browser.get("/").status_code == 302
    events = list(AuditEvent.objects.filter(id__gt=first_event).values_list("action", flat=True))
    print("audit events:", events)
    # One action, one event; one access write: one lock, the root invariant
    # read once before and once after (managers_remain: its first query).
    assert events == ["scim.user_deactivated"]
    invariant = [q for q in statements if q.startswith(MANAGERS_REMAIN)]
    assert len(invariant) == 2, invariant
    if connection.vendor == "postgresql":
        assert sum("pg_advisory_xact_lock" in q for q in statements) == 1
    # Measured with this test on the code before the change (0781c94): 43
    # statements on SQLite, 44 on PostgreSQL, 4 audit events (user.updated,
    # user.blocked, scim.user_updated, scim.user_deactivated), the lock
    # twice, managers_remain 4 times. After: 25 on both, 1 event.
    assert len(statements) <= 30
    # Only what changes is written: never a password hash read earlier.
    updates = [q for q in statements if q.startswith('UPDATE "accounts_user"')]
    assert updates and not any('"password"' in q for q in updates)


def _group_of(scim, name: str, size: int) -> str:
    """A SCIM group of `size` members (made in bulk: the test is about the
    PATCH)."""
    client = ScimClient.objects.get()
    users = User.objects.bulk_create(
        User(email=f"{name}{n}@shop.example", first_name="M", last_name=str(n), password="!")
        for n in range(size)
    )
    accounts = Account.objects.bulk_create(Account(client=client, user=u) for u in users)
    group = ScimGroup.objects.create(client=client, display_name=name)
    group.members.add(*accounts)
    return str(group.pk)


def _membership_patches(scim, gid: str, pk: str) -> list[int]:
    """Statements of Entra's add, then remove, of one member."""
    counts = []
    for op in ("Add", "Remove"):
        body = entra_patch({"op": op, "path": "members", "value": [{"$ref": None, "value": pk}]})
        with CaptureQueriesContext(connection) as captured:
            response = scim.patch(f"Groups/{gid}", body)
        assert response.status_code == 204, response.content
        counts.append(len(captured.captured_queries))
        in_staff = User.objects.get(pk=pk).groups.filter(name="staff").exists()
        assert in_staff is (op == "Add")
    return counts


def test_membership_patch_statements_do_not_grow_with_the_group(client):
    GroupFactory(name="staff")
    UserFactory(email="boss@shop.example", groups=["root"])
    scim = Scim(client, make_token(group_map={"small": "staff", "large": "staff"}))
    pk = scim.post("Users", entra_user("new@shop.example", external_id="e-new")).json()["id"]
    small = _membership_patches(scim, _group_of(scim, "small", 10), pk)
    large = _membership_patches(scim, _group_of(scim, "large", 1000), pk)
    print(f"\nmembership PATCH (add, remove): 10 members {small}, 1000 members {large} statements")
    assert small == large
