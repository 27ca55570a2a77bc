"""SCIM with the bodies Microsoft Entra ID really sends, replayed over HTTP.

Every request of Microsoft's tutorial ("Tutorial: Develop and plan
provisioning for a SCIM endpoint in Microsoft Entra ID", section "SCIM
protocol requests and responses") and of its known-issues page ("Known
issues and resolutions with SCIM 2.0 protocol compliance of the Microsoft
Entra user provisioning service"), each with and without the
`aadOptscim062020` flag where the page shows both. One adaptation: our
userName is the login address, so the tutorial's bare `Test_User_<uuid>`
names are addresses here.
"""

import pytest

from accounts.models import AuditEvent, Group, User
from scim.models import Account
from scim.models import Group as ScimGroup
from tests.factories import GroupFactory
from tests.support.scim import (
    GROUP_SCHEMA,
    PATCH_SCHEMA,
    SCIM,
    USER_SCHEMA,
    Scim,
    assert_error,
    make_token,
)

pytestmark = pytest.mark.django_db

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
AD_GROUP = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
USER_NAME = "test_user_00aa00aa-bb11-cc22-dd33-44ee44ee44ee@testuser.com"
WORK_EMAIL = "Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com"


@pytest.fixture
def entra(client):
    GroupFactory(name="staff")
    return Scim(client, make_token("entra", group_map={"displayName": "staff"}))


def patch(*operations):
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


def create_user(entra, user_name=USER_NAME, external_id="0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"):
    """The tutorial's Create User request."""
    body = {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "externalId": external_id,
        "userName": user_name,
        "active": True,
        "emails": [{"primary": True, "type": "work", "value": WORK_EMAIL}],
        "meta": {"resourceType": "User"},
        "name": {
            "formatted": "givenName familyName",
            "familyName": "familyName",
            "givenName": "givenName",
        },
        "roles": [],
    }
    response = entra.post("Users", body)
    assert response.status_code == 201, response.content
    return response.json()


def create_group(entra, name="displayName"):
    """The tutorial's Create Group request (with Microsoft's extra schema)."""
    body = {
        "schemas": [GROUP_SCHEMA, AD_GROUP],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": name,
        "meta": {"resourceType": "Group"},
    }
    response = entra.post("Groups", body)
    assert response.status_code == 201, response.content
    assert response.json().get("members", []) == []
    return response.json()


def assert_no_content(response):
    """A 204 has no body and says no Content-Type (Django's default is text/html)."""
    assert response.status_code == 204, response.content
    assert response.content == b""
    assert not response.has_header("Content-Type"), response.get("Content-Type")


# --- users: the tutorial ---------------------------------------------------------------


def test_tutorial_user_lifecycle(entra):
    created = create_user(entra)
    assert created["userName"] == USER_NAME and created["active"] is True
    pk = created["id"]

    got = entra.get(f"Users/{pk}")
    assert got.status_code == 200 and got["Content-Type"] == SCIM
    assert_error(entra.get("Users/5171a35d82074e068ce2"), 404)

    found = entra.get("Users", filter=f'userName eq "{USER_NAME}"').json()
    assert found["totalResults"] == 1 and found["Resources"][0]["id"] == pk
    none = entra.get("Users", filter='userName eq "non-existent user"').json()
    assert none["totalResults"] == 0 and none["Resources"] == []

    # Update User [Multi-valued properties]: emails mirrors userName (the
    # login), so the work address is accepted and not kept; the name is.
    response = entra.patch(
        f"Users/{pk}",
        patch(
            {
                "op": "Replace",
                "path": 'emails[type eq "work"].value',
                "value": "updatedEmail@microsoft.com",
            },
            {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
        ),
    )
    assert response.status_code == 200, response.content
    assert response.json()["name"]["familyName"] == "updatedFamilyName"

    # Update User [Single-valued properties]
    new_name = "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"
    response = entra.patch(
        f"Users/{pk}", patch({"op": "Replace", "path": "userName", "value": new_name})
    )
    assert response.status_code == 200, response.content
    assert User.objects.get(pk=pk).email == new_name

    # Disable User (the tutorial's body: a boolean, schemas last)
    response = entra.patch(
        f"Users/{pk}",
        {
            "Operations": [{"op": "Replace", "path": "active", "value": False}],
            "schemas": [PATCH_SCHEMA],
        },
    )
    assert response.status_code == 200, response.content
    assert response.json()["active"] is False and not User.objects.get(pk=pk).is_active

    assert_no_content(entra.delete(f"Users/{pk}"))
    assert not User.objects.filter(pk=pk).exists()


def test_users_are_found_by_their_work_address(entra):
    """Microsoft lists `emails[type eq "work"].value` beside userName for matching."""
    pk = create_user(entra)["id"]
    for text in (
        f'emails[type eq "work"].value eq "{USER_NAME}"',
        f'emails[type eq "work"].value eq "{USER_NAME.upper()}"',
        f'emails[type eq "work" and value eq "{USER_NAME}"]',
        f'emails.value eq "{USER_NAME}"',
    ):
        found = entra.get("Users", filter=text)
        assert found.status_code == 200, (text, found.content)
        assert [r["id"] for r in found.json()["Resources"]] == [pk], text
    missing = entra.get("Users", filter='emails[type eq "work"].value eq "nobody@testuser.com"')
    assert missing.json()["totalResults"] == 0
    # Only work addresses are kept: a home address matches nobody.
    home = entra.get("Users", filter=f'emails[type eq "home"].value eq "{USER_NAME}"')
    assert home.status_code == 200 and home.json()["totalResults"] == 0
    searched = entra.post(
        "Users/.search",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": f'emails[type eq "work"].value eq "{USER_NAME}"',
        },
    )
    assert searched.status_code == 200 and searched.json()["totalResults"] == 1


# --- groups: the tutorial --------------------------------------------------------------


def test_tutorial_group_lifecycle(entra):
    jo = create_user(entra)["id"]
    group = create_group(entra)
    gid = group["id"]

    got = entra.get(f"Groups/{gid}", excludedAttributes="members")
    assert got.status_code == 200 and "members" not in got.json()
    found = entra.get(
        "Groups", excludedAttributes="members", filter='displayName eq "displayName"'
    ).json()
    assert found["totalResults"] == 1 and "members" not in found["Resources"][0]

    renamed = "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"
    response = entra.patch(
        f"Groups/{gid}", patch({"op": "Replace", "path": "displayName", "value": renamed})
    )
    assert_no_content(response)
    assert ScimGroup.objects.get(pk=gid).display_name == renamed
    entra.patch(
        f"Groups/{gid}", patch({"op": "Replace", "path": "displayName", "value": "displayName"})
    )

    added = entra.patch(
        f"Groups/{gid}",
        patch({"op": "Add", "path": "members", "value": [{"$ref": None, "value": jo}]}),
    )
    assert_no_content(added)
    assert list(ScimGroup.objects.get(pk=gid).members.values_list("user_id", flat=True)) == [
        int(jo)
    ]
    assert User.objects.get(pk=jo).groups.filter(name="staff").exists()

    removed = entra.patch(
        f"Groups/{gid}",
        patch({"op": "Remove", "path": "members", "value": [{"$ref": None, "value": jo}]}),
    )
    assert_no_content(removed)
    assert not ScimGroup.objects.get(pk=gid).members.exists(), "a silent deprovisioning loss"
    assert not User.objects.get(pk=jo).groups.filter(name="staff").exists()

    assert_no_content(entra.delete(f"Groups/{gid}"))
    assert not ScimGroup.objects.filter(pk=gid).exists()


# --- the known-issues page, without and with aadOptscim062020 ---------------------------


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "Replace", "path": "active", "value": "False"},  # without the flag
        {"op": "replace", "path": "active", "value": False},  # with the flag
    ],
    ids=["without-flag", "aadOptscim062020"],
)
def test_disable_user(entra, operation):
    pk = create_user(entra)["id"]
    response = entra.patch(f"Users/{pk}", patch(operation))
    assert response.status_code == 200, response.content
    assert response.json()["active"] is False
    assert User.objects.get(pk=pk).status == User.Status.BLOCKED


@pytest.mark.parametrize("op", ["Add", "add"], ids=["without-flag", "aadOptscim062020"])
def test_add_a_single_value_string_attribute(entra, op):
    """nickName is a core attribute we do not keep: accepted, nothing changes."""
    pk = create_user(entra)["id"]
    before = User.objects.get(pk=pk)
    response = entra.patch(f"Users/{pk}", patch({"op": op, "path": "nickName", "value": "Babs"}))
    assert response.status_code == 200, response.content
    after = User.objects.get(pk=pk)
    assert (after.email, after.first_name, after.last_name) == (
        before.email,
        before.first_name,
        before.last_name,
    )


def test_replace_multiple_attributes_without_flag(entra):
    pk = create_user(entra)["id"]
    response = entra.patch(
        f"Users/{pk}",
        patch(
            {"op": "Replace", "path": "displayName", "value": "Pvlo"},
            {
                "op": "Replace",
                "path": 'emails[type eq "work"].value',
                "value": "TestBcwqnm@test.microsoft.com",
            },
            {"op": "Replace", "path": "name.givenName", "value": "Gtfd"},
            {"op": "Replace", "path": "name.familyName", "value": "Pkqf"},
            {"op": "Replace", "path": "externalId", "value": "Eqpj"},
            {"op": "Replace", "path": f"{ENTERPRISE}:employeeNumber", "value": "Eqpj"},
        ),
    )
    assert response.status_code == 200, response.content
    user = User.objects.get(pk=pk)
    assert (user.first_name, user.last_name) == ("Gtfd", "Pkqf")
    assert Account.objects.get(user=user).external_id == "Eqpj"


def test_replace_multiple_attributes_with_flag(entra):
    pk = create_user(entra)["id"]
    response = entra.patch(
        f"Users/{pk}",
        patch(
            {
                "op": "replace",
                "path": 'emails[type eq "work"].value',
                "value": "TestMhvaes@test.microsoft.com",
            },
            {
                "op": "replace",
                "value": {
                    "displayName": "Bjfe",
                    "name.givenName": "Kkom",
                    "name.familyName": "Unua",
                    f"{ENTERPRISE}:employeeNumber": "Aklq",
                },
            },
        ),
    )
    assert response.status_code == 200, response.content
    user = User.objects.get(pk=pk)
    assert (user.first_name, user.last_name) == ("Kkom", "Unua")
    assert user.email == USER_NAME


@pytest.mark.parametrize(
    "operation",
    [
        lambda pk: {"op": "Remove", "path": "members", "value": [{"value": pk}]},
        lambda pk: {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": pk}]},
        lambda pk: {"op": "remove", "path": f'members[value eq "{pk}"]'},
    ],
    ids=["without-flag", "tutorial-ref-null", "aadOptscim062020"],
)
def test_remove_a_group_member(entra, operation):
    jo = create_user(entra)["id"]
    ann = create_user(entra, "ann@testuser.com", external_id="e-ann")["id"]
    gid = create_group(entra)["id"]
    entra.patch(
        f"Groups/{gid}",
        patch({"op": "Add", "path": "members", "value": [{"value": jo}, {"value": ann}]}),
    )
    assert ScimGroup.objects.get(pk=gid).members.count() == 2
    response = entra.patch(f"Groups/{gid}", patch(operation(jo)))
    assert_no_content(response)
    members = ScimGroup.objects.get(pk=gid).members.values_list("user_id", flat=True)
    assert list(members) == [int(ann)]
    assert not Group.objects.get(name="staff").memberships.filter(user_id=jo).exists()
    assert Group.objects.get(name="staff").memberships.filter(user_id=ann).exists()
    event = AuditEvent.objects.filter(action="scim.group_updated").latest("id")
    assert event.details["changed"]["members"] == {"added": 0, "removed": 1}


@pytest.mark.parametrize("op", ["Add", "add"])
def test_add_members_twice_is_idempotent(entra, op):
    jo = create_user(entra)["id"]
    gid = create_group(entra)["id"]
    body = patch({"op": op, "path": "members", "value": [{"$ref": None, "value": jo}]})
    assert_no_content(entra.patch(f"Groups/{gid}", body))
    assert_no_content(entra.patch(f"Groups/{gid}", body))
    assert ScimGroup.objects.get(pk=gid).members.count() == 1


def test_removing_a_member_who_is_not_there_changes_nothing(entra):
    jo = create_user(entra)["id"]
    gid = create_group(entra)["id"]
    body = patch({"op": "Remove", "path": "members", "value": [{"$ref": None, "value": jo}]})
    assert_no_content(entra.patch(f"Groups/{gid}", body))
    assert not AuditEvent.objects.filter(action="scim.group_updated").exists()


def test_a_member_that_names_nobody_is_refused_and_changes_nothing(entra):
    jo = create_user(entra)["id"]
    gid = create_group(entra)["id"]
    body = patch(
        {"op": "Add", "path": "members", "value": [{"value": jo}, {"value": "999999"}]},
    )
    assert_error(entra.patch(f"Groups/{gid}", body), 400)
    assert not ScimGroup.objects.get(pk=gid).members.exists()


def test_replace_members_replaces_them(entra):
    """Okta and RFC 7644 send `replace` of members: the list becomes exactly it."""
    jo = create_user(entra)["id"]
    ann = create_user(entra, "ann@testuser.com", external_id="e-ann")["id"]
    gid = create_group(entra)["id"]
    entra.patch(f"Groups/{gid}", patch({"op": "add", "path": "members", "value": [{"value": jo}]}))
    response = entra.patch(
        f"Groups/{gid}", patch({"op": "replace", "path": "members", "value": [{"value": ann}]})
    )
    assert_no_content(response)
    assert list(ScimGroup.objects.get(pk=gid).members.values_list("user_id", flat=True)) == [
        int(ann)
    ]
    response = entra.patch(f"Groups/{gid}", patch({"op": "remove", "path": "members"}))
    assert_no_content(response)
    assert not ScimGroup.objects.get(pk=gid).members.exists()


def test_pathless_replace_of_a_group(entra):
    """Okta's rename repeats the id; the known-issues page's pathless shape."""
    jo = create_user(entra)["id"]
    gid = create_group(entra)["id"]
    response = entra.patch(
        f"Groups/{gid}",
        patch(
            {"op": "replace", "value": {"id": gid, "displayName": "Renamed"}},
            {"op": "Add", "value": {"members": [{"value": jo}], "externalId": "x-1"}},
        ),
    )
    assert_no_content(response)
    group = ScimGroup.objects.get(pk=gid)
    assert (group.display_name, group.external_id) == ("Renamed", "x-1")
    assert list(group.members.values_list("user_id", flat=True)) == [int(jo)]
    bad = entra.patch(f"Groups/{gid}", patch({"op": "replace", "value": {"colour": "red"}}))
    assert_error(bad, 400)


def test_an_empty_path_is_a_pathless_operation_not_a_500(entra):
    """`"path": ""` parses to no expression: it acts as no path at all (found
    by tests/test_scim_fuzz.py: it was a 500)."""
    gid = create_group(entra)["id"]
    response = entra.patch(
        f"Groups/{gid}",
        patch({"op": "replace", "path": "", "value": {"displayName": "Empty path"}}),
    )
    assert_no_content(response)
    assert ScimGroup.objects.get(pk=gid).display_name == "Empty path"
    bad = entra.patch(f"Groups/{gid}", patch({"op": "replace", "path": "", "value": {"colour": 1}}))
    assert_error(bad, 400)
