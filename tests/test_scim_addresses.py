"""SCIM and the addresses every other door accepts (issue 20, finding 3).

Special-use domains (`.local`, `.test`, `.invalid`, `.localhost`, `.onion`,
`.arpa`) pass accounts.inputs, the one address rule; scim2-models' EmailStr
refused to render them, so a deactivation answered 400 and left the
account active with its live session, an unfiltered GET /Users failed, and
a POST committed the account and still answered 400.
"""

import json

import pytest
from django.test import Client

from accounts.inputs import clean_email
from accounts.models import AuditEvent, User
from scim.models import Account
from tests.conftest import login
from tests.factories import UserFactory
from tests.support.scim import Scim, entra_patch, entra_user, make_token

pytestmark = pytest.mark.django_db

SPECIAL = [
    "ann@example.local",
    "ann@shop.test",
    "ann@shop.invalid",
    "ann@shop.localhost",
    "ann@expyuzz4wqqyqhjn.onion",
    "ann@1.0.0.127.in-addr.arpa",
]


@pytest.fixture
def scim(client):
    return Scim(client, make_token())


@pytest.mark.parametrize("email", SPECIAL)
def test_the_address_rule_accepts_them(email):
    assert clean_email(email) == email


@pytest.mark.parametrize("email", SPECIAL)
def test_post_creates_and_answers_201(scim, email):
    response = scim.post("Users", entra_user(email, external_id="e-ann"))
    assert response.status_code == 201, response.content
    assert response.json()["userName"] == email
    assert response.json()["emails"][0]["value"] == email
    assert User.objects.filter(email=email).count() == 1


@pytest.mark.parametrize("email", SPECIAL[:2])
def test_deactivation_ends_the_session(scim, email, password):
    pk = scim.post("Users", entra_user(email, external_id="e-ann")).json()["id"]
    person = User.objects.get(pk=pk)
    person.set_password(password)  # its own account: a password set since
    person.save()
    browser = Client()
    assert login(browser, person.email, password).status_code == 302
    assert browser.get("/").status_code == 200
    response = scim.patch(
        f"Users/{pk}", entra_patch({"op": "Replace", "path": "active", "value": "False"})
    )
    assert response.status_code == 200, response.content
    assert response.json()["active"] is False
    person.refresh_from_db()
    assert person.status == User.Status.BLOCKED
    assert browser.get("/").status_code == 302
    event = AuditEvent.objects.get(action="scim.user_deactivated")
    assert event.details["sessions_ended"] == 1


def test_unfiltered_list_and_get_render_them(scim):
    UserFactory(email="ann@example.local")  # made on the screens
    listed = scim.get("Users")
    assert listed.status_code == 200, listed.content
    assert "ann@example.local" in [r["userName"] for r in listed.json()["Resources"]]
    found = scim.get("Users", filter='userName eq "ann@example.local"').json()
    assert found["totalResults"] == 1
    got = scim.get(f"Users/{found['Resources'][0]['id']}")
    assert got.status_code == 200 and got.json()["emails"][0]["value"] == "ann@example.local"


def test_a_refused_address_changes_nothing(scim):
    """What the rule refuses is a 400 and nothing is written."""
    before = User.objects.count()
    response = scim.post("Users", entra_user("ann@exa mple.local"))
    assert response.status_code == 400, response.content
    assert User.objects.count() == before and not Account.objects.exists()


def test_an_error_after_the_write_rolls_it_back(scim, monkeypatch):
    """A POST that answers an error has changed nothing, even when the
    error comes after the account services wrote (rendering, here)."""
    from scim import views

    def broken(*args, **kwargs):
        raise views.InvalidValueException(detail="cannot render")

    monkeypatch.setattr(views, "_user_json", broken)
    response = scim.post("Users", entra_user("ann@shop.example"))
    assert response.status_code == 400, response.content
    assert not User.objects.filter(email="ann@shop.example").exists()
    assert not AuditEvent.objects.filter(action="scim.user_created").exists()


def test_a_patch_whose_answer_is_an_error_changes_nothing(scim):
    """The response parameters are checked before the write, not after it."""
    pk = scim.post("Users", entra_user("ann@example.local", external_id="e-ann")).json()["id"]
    body = entra_patch({"op": "Replace", "path": "active", "value": False})
    response = scim.client.patch(
        f"/scim/v2/Users/{pk}?attributes=userName&excludedAttributes=name",
        data=json.dumps(body),
        content_type="application/scim+json",
        HTTP_AUTHORIZATION=f"Bearer {scim.token}",
    )
    assert response.status_code == 400, response.content
    assert User.objects.get(pk=pk).is_active
    assert not AuditEvent.objects.filter(action="scim.user_deactivated").exists()
