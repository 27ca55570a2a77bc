"""Text no database can store: a lone UTF-16 surrogate (JSON's "\\ud800",
or the same escape inside a filter string, which the filter parser decodes).

Python keeps it in a str, but it has no UTF-8 form: SQLite and PostgreSQL's
drivers raise UnicodeEncodeError (not a DatabaseError), so a SCIM request
carrying one answered a 500 with a traceback, in a filter, an externalId,
a name or an address. The client's mistake is a 400, and changes nothing.
"""

import json

import pytest

from accounts.models import User
from scim.models import Account, Group
from tests.factories import UserFactory
from tests.support.scim import Scim, assert_error, entra_group, entra_patch, entra_user, make_token

pytestmark = pytest.mark.django_db

LONE = "\ud800"


@pytest.fixture
def scim(client, db):
    UserFactory(email="boss@shop.example", groups=["root"])
    return Scim(client, make_token("entra"))


@pytest.mark.parametrize(
    "where, text",
    [
        ("Users", 'userName eq "\\ud800@shop.example"'),
        ("Users", 'externalId eq "\\udfff"'),
        ("Users", 'emails[type eq "work"].value eq "a\\ud83d@shop.example"'),
        ("Groups", 'displayName eq "\\ud800"'),
        ("Groups", 'externalId eq "\\ud800"'),
    ],
)
def test_a_filter_with_a_lone_surrogate_is_a_400(scim, where, text):
    assert_error(scim.get(where, filter=text), 400, "invalidFilter")
    search = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": text}
    assert scim.post(f"{where}/.search", search).status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        entra_user("ann@shop.example", external_id=LONE),
        entra_user(f"a{LONE}@shop.example"),
        entra_user("ann@shop.example", name={"givenName": LONE, "familyName": "B"}),
    ],
    ids=["externalId", "userName", "givenName"],
)
def test_a_user_with_a_lone_surrogate_is_a_400_and_nothing_is_written(scim, body):
    before = User.objects.count()
    assert_error(scim.post("Users", json.dumps(body)), 400)
    assert User.objects.count() == before and not Account.objects.exists()


def test_a_patch_or_group_with_a_lone_surrogate_is_a_400(scim):
    pk = scim.post("Users", entra_user("ann@shop.example")).json()["id"]
    patch = entra_patch({"op": "Replace", "path": "externalId", "value": LONE})
    assert_error(scim.patch(f"Users/{pk}", json.dumps(patch)), 400)
    assert Account.objects.get(user_id=pk).external_id == "e-1"
    assert_error(scim.post("Groups", json.dumps(entra_group("G", external_id=LONE))), 400)
    assert not Group.objects.exists()
