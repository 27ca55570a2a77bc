"""SCIM deprovisioning never depends on re-judging what is stored
(issue 20, 3: "a deprovisioning must never depend on rendering").

A deactivation PATCH (Entra's `active "False"`) is applied to the account
as it is stored, so the resulting write repeats the stored names. They
were re-checked against today's name rule: an account whose names an
older rule let through (a bidi control, a line break, an empty surname
from before names were required) could not be deprovisioned at all:
400 for a linked account, 409 for one the client may only block, and in
both cases the leaver stayed active with their live session. Only a
value that changes is judged.
"""

import pytest
from django.test import Client

from accounts.models import AuditEvent, User
from scim.models import Account
from tests.conftest import login
from tests.factories import PASSWORD, UserFactory
from tests.support.scim import Scim, entra_patch, entra_user, make_token

pytestmark = pytest.mark.django_db

DEACTIVATE = entra_patch({"op": "Replace", "path": "active", "value": "False"})
LEGACY = [
    {"first_name": "Jo\u202e"},
    {"last_name": "Bloggs\nadmin"},
    {"last_name": ""},
]


@pytest.fixture
def scim(client, db):
    UserFactory(email="boss@shop.example", groups=["root"])
    return Scim(client, make_token("entra", group_map={"Admins": "root"}))


@pytest.mark.parametrize("stored", LEGACY)
def test_a_linked_account_with_legacy_names_is_deactivated(scim, stored):
    pk = scim.post("Users", entra_user()).json()["id"]
    User.objects.filter(pk=pk).update(**stored)
    response = scim.patch(f"Users/{pk}", DEACTIVATE)
    assert response.status_code == 200, response.content
    account = User.objects.get(pk=pk)
    assert not account.is_active
    # Nothing else was rewritten on the way.
    assert {k: getattr(account, k) for k in stored} == stored


@pytest.mark.parametrize("stored", LEGACY)
def test_an_account_it_may_only_block_with_legacy_names_is_blocked(scim, stored):
    account = UserFactory(email="leaver@shop.example")
    User.objects.filter(pk=account.pk).update(**stored)
    browser = Client()
    assert login(browser, account.email, PASSWORD).status_code == 302
    response = scim.patch(f"Users/{account.pk}", DEACTIVATE)
    assert response.status_code == 200, response.content
    account.refresh_from_db()
    assert not account.is_active
    assert browser.get("/").status_code == 302  # the live session ended
    assert not Account.objects.filter(user=account).exists()  # blocked, not linked
    assert AuditEvent.objects.get(action="scim.user_deactivated").details["linked"] is False


def test_a_new_name_is_still_judged(scim):
    pk = scim.post("Users", entra_user()).json()["id"]
    patch = entra_patch({"op": "Replace", "path": "name.givenName", "value": "Jo\u202e"})
    response = scim.patch(f"Users/{pk}", patch)
    assert response.status_code == 400, response.content
    assert User.objects.get(pk=pk).first_name == "Jo"
