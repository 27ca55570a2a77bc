"""SCIM 2.0 provisioning through HTTP, with the bodies Entra ID really sends.

The django test Client is the HTTP door (the whole middleware stack runs);
the token comes from `manage.py scimtoken create`, as an operator makes it.
"""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import AuditEvent, Group, Membership, User
from scim.models import Account
from scim.models import Client as ScimClient
from tests.conftest import login
from tests.factories import GroupFactory, RoleFactory, RuleFactory, UserFactory
from tests.support.scim import (
    GROUP_SCHEMA,
    PATCH_SCHEMA,
    SCIM,
    USER_SCHEMA,
    Scim,
    assert_error,
    entra_group,
    entra_patch,
    entra_user,
    make_token,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def scim(client):
    return Scim(client, make_token())


# --- create, read, filter ------------------------------------------------------------


def test_create_user_as_entra_sends_it(scim):
    response = scim.post("Users", entra_user())
    assert response.status_code == 201, response.content
    body = response.json()
    assert response["Content-Type"] == SCIM
    assert body["userName"] == "jo@shop.example"
    assert body["externalId"] == "e-1"
    assert body["active"] is True
    assert response["Location"].endswith(f"/scim/v2/Users/{body['id']}")
    user = User.objects.get(email="jo@shop.example")
    assert (user.first_name, user.last_name) == ("Jo", "Bloggs")
    assert not user.has_usable_password()  # logs in by SSO, like an auto-provisioned account
    assert user.memberships.count() == 0  # groups only through the map
    event = AuditEvent.objects.get(action="scim.user_created")
    assert event.actor_label == "scim:entra" and event.target_label == "jo@shop.example"
    assert AuditEvent.objects.filter(action="user.created", actor_label="scim:entra").exists()
    # A second POST of the same externalId or userName is a conflict.
    assert_error(scim.post("Users", entra_user()), 409, "uniqueness")


def test_first_contact_matches_an_existing_account_by_email_then_by_external_id(scim):
    # No local credential (made for SSO): the client may adopt it
    # (test_scim_adoption: one with a password or a factor it may not).
    existing = UserFactory(email="ada@shop.example", first_name="Ada", last_name="L", password="!")
    found = scim.get("Users", filter='userName eq "ADA@shop.example"').json()
    assert found["totalResults"] == 1 and found["Resources"][0]["id"] == str(existing.pk)
    response = scim.post("Users", entra_user("ada@shop.example", external_id="e-ada"))
    assert response.status_code == 201
    assert response.json()["id"] == str(existing.pk)
    existing.refresh_from_db()
    # The same address spelt otherwise changes nothing (and is not audited as a change).
    scim.patch(
        f"Users/{existing.pk}",
        entra_patch({"op": "Replace", "path": "userName", "value": "Ada@SHOP.example"}),
    )
    existing.refresh_from_db()
    assert existing.email == "ada@shop.example"
    updates = AuditEvent.objects.filter(action="scim.user_updated")
    assert all("email" not in event.details["changed"] for event in updates)
    assert AuditEvent.objects.filter(action="scim.user_linked").exists()
    by_external = scim.get("Users", filter='externalId eq "e-ada"').json()
    assert [r["id"] for r in by_external["Resources"]] == [str(existing.pk)]
    # Renamed at the provider: still found by externalId.
    scim.patch(
        f"Users/{existing.pk}",
        entra_patch({"op": "Replace", "path": "userName", "value": "ada.l@shop.example"}),
    )
    by_external = scim.get("Users", filter='externalId eq "e-ada"').json()
    assert by_external["Resources"][0]["userName"] == "ada.l@shop.example"


def test_filters_and_pagination(scim):
    for n in range(5):
        scim.post("Users", entra_user(f"p{n}@shop.example", external_id=f"x{n}"))
    page = scim.get("Users", startIndex=2, count=2).json()
    assert page["totalResults"] == User.objects.count()
    assert page["startIndex"] == 2 and page["itemsPerPage"] == 2
    assert len(page["Resources"]) == 2
    none = scim.get("Users", filter='userName eq "nobody@shop.example"').json()
    assert none["totalResults"] == 0 and none["Resources"] == []
    both = scim.get("Users", filter='externalId eq "x1" or externalId eq "x3"').json()
    assert sorted(r["userName"] for r in both["Resources"]) == [
        "p1@shop.example",
        "p3@shop.example",
    ]


@pytest.mark.parametrize(
    "bad",
    [
        "userName eq",
        'userName zz "x"',
        'password eq "x"',
        'userName co "x"',
        "userName pr",
        'not (userName eq "x")',
        "(" * 500,
        'userName eq "' + "a" * 2000 + '"',
    ],
)
def test_bad_filters_are_400_invalid_filter(scim, bad):
    assert_error(scim.get("Users", filter=bad), 400, "invalidFilter")


def test_bad_pagination_is_400_and_odd_pages_are_empty(scim):
    assert_error(scim.get("Users", count="many"), 400, "invalidValue")
    assert_error(scim.get("Users", startIndex="1.5"), 400, "invalidValue")
    far = scim.get("Users", startIndex=str(10**30), count=str(10**30)).json()
    assert far["Resources"] == [] and far["itemsPerPage"] == 0
    none = scim.get("Users", startIndex="-5", count="-1").json()
    assert none["startIndex"] == 1 and none["Resources"] == []


# --- PATCH in Entra ID's dialect -----------------------------------------------------


def test_patch_entra_dialect(scim):
    pk = scim.post("Users", entra_user()).json()["id"]
    response = scim.patch(
        f"Users/{pk}",
        entra_patch(
            {"op": "Replace", "path": "name.givenName", "value": "Joanna"},
            {"op": "Replace", "path": "name.familyName", "value": "Blog"},
            {"op": "Add", "path": "externalId", "value": "e-2"},
            {"op": "Replace", "path": "userName", "value": "joanna@shop.example"},
            # Accepted, not kept: emails mirrors userName, displayName the names.
            {
                "op": "Replace",
                "path": 'emails[type eq "work"].value',
                "value": "elsewhere@shop.example",
            },
            {"op": "Replace", "path": "displayName", "value": "Someone Else"},
        ),
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["name"]["givenName"] == "Joanna" and body["externalId"] == "e-2"
    assert body["userName"] == "joanna@shop.example"
    assert body["emails"] == [{"value": "joanna@shop.example", "type": "work", "primary": True}]
    assert body["displayName"] == "Joanna Blog"
    user = User.objects.get(pk=pk)
    assert (user.email, user.first_name, user.last_name) == (
        "joanna@shop.example",
        "Joanna",
        "Blog",
    )
    # Each change audited once: the account's by the account services (as
    # the client), the externalId (SCIM's own) by SCIM.
    event = AuditEvent.objects.filter(action="user.updated").latest("id")
    assert event.actor_label == "scim:entra"
    assert {"email", "first_name", "last_name"} <= set(event.details)
    event = AuditEvent.objects.filter(action="scim.user_updated").latest("id")
    assert event.details["changed"] == ["external_id"]
    # A work address that did not exist yet (Entra's Add on a filtered path).
    response = scim.patch(
        f"Users/{pk}",
        entra_patch(
            {"op": "Add", "path": 'emails[type eq "home"].value', "value": "jo@home.example"}
        ),
    )
    assert response.status_code == 200, response.content
    assert User.objects.get(pk=pk).email == "joanna@shop.example"
    # Entra's pathless Replace, with a value holding several attributes.
    response = scim.patch(
        f"Users/{pk}",
        entra_patch({"op": "Replace", "value": {"name.familyName": "Bloggs", "active": "False"}}),
    )
    assert response.status_code == 200, response.content
    user = User.objects.get(pk=pk)
    assert user.last_name == "Bloggs" and not user.is_active


def test_deactivate_blocks_like_an_admin_and_ends_the_live_session(scim, client, password):
    from django.test import Client

    # Made for SSO (no password), adopted by the client, which it may:
    # no local credential (a password set since does not undo the link).
    person = UserFactory(email="leaver@shop.example", groups=["backoffice-users"], password="!")
    scim.post("Users", entra_user("leaver@shop.example", external_id="e-leaver"))
    person.set_password(password)
    person.save()
    browser = Client()
    login(browser, person.email, password)
    assert browser.get("/").status_code == 200
    response = scim.patch(
        f"Users/{person.pk}", entra_patch({"op": "Replace", "path": "active", "value": "False"})
    )
    assert response.status_code == 200, response.content
    assert response.json()["active"] is False
    person.refresh_from_db()
    assert person.status == User.Status.BLOCKED
    # The next request of the open session finds it gone.
    after = browser.get("/")
    assert after.status_code == 302 and after["Location"].startswith("/login/")
    # One action, one event: the deactivation, naming the client, with what
    # followed from it (not also user.blocked, user.updated, scim.user_updated).
    blocked = AuditEvent.objects.get(action="scim.user_deactivated")
    assert blocked.actor_label == "scim:entra" and blocked.details["client"] == "entra"
    assert blocked.details["sessions_ended"] >= 1 and blocked.details["tokens_revoked"]
    assert blocked.details["status"] == ["active", "blocked"]
    login_event = AuditEvent.objects.get(action="login.succeeded")
    after = AuditEvent.objects.filter(id__gt=login_event.id).values_list("action", flat=True)
    assert list(after) == ["scim.user_deactivated"]
    # And back: "True" as Entra sends it.
    scim.patch(
        f"Users/{person.pk}", entra_patch({"op": "Replace", "path": "active", "value": "True"})
    )
    person.refresh_from_db()
    assert person.is_active


def test_put_replaces(scim):
    pk = scim.post("Users", entra_user()).json()["id"]
    body = entra_user(active=False, name={"givenName": "Jay", "familyName": "B"})
    response = scim.put(f"Users/{pk}", body)
    assert response.status_code == 200, response.content
    user = User.objects.get(pk=pk)
    assert user.first_name == "Jay" and not user.is_active


def test_delete_removes_the_account_and_keeps_the_history(scim, client, password):
    from django.test import Client

    pk = scim.post("Users", entra_user()).json()["id"]
    user = User.objects.get(pk=pk)
    user.set_password(password)
    user.save()
    browser = Client()
    login(browser, user.email, password)
    assert browser.get("/").status_code == 200
    assert scim.delete(f"Users/{pk}").status_code == 204
    assert not User.objects.filter(pk=pk).exists()
    assert browser.get("/").status_code == 302
    assert AuditEvent.objects.filter(action="user.deleted", target_label="jo@shop.example").exists()
    assert AuditEvent.objects.filter(action="scim.user_deleted").exists()
    assert_error(scim.get(f"Users/{pk}"), 404)
    assert_error(scim.delete(f"Users/{pk}"), 404)


def test_delete_refuses_an_account_the_client_never_provisioned(scim):
    other = UserFactory(email="local@shop.example")
    assert_error(scim.delete(f"Users/{other.pk}"), 400)
    assert User.objects.filter(pk=other.pk).exists()


# --- groups: map and ceiling ---------------------------------------------------------


@pytest.fixture
def user_admins():
    """A group holding user management (and a small group within it)."""
    role = RoleFactory(name="user-admin")
    RuleFactory(role=role, pattern="backoffice:users:*")
    RuleFactory(role=role, pattern="backoffice:dashboard:*")
    return GroupFactory(name="user-admins", roles=[role])


def test_groups_follow_the_map_and_leave_manual_memberships_alone(client, user_admins):
    api = Scim(client, make_token("okta", group_map={"BO Staff": "backoffice-users", "Other": []}))
    jo = api.post("Users", entra_user()).json()["id"]
    kim = api.post("Users", entra_user("kim@shop.example", external_id="e-kim")).json()["id"]
    staff = Group.objects.get(name="backoffice-users")
    # Kim was already given the group by hand.
    Membership.objects.create(user_id=kim, group=staff)
    response = api.post("Groups", entra_group("BO Staff", members=[jo, kim]))
    assert response.status_code == 201, response.content
    gid = response.json()["id"]
    mine = Membership.objects.get(user_id=jo, group=staff)
    assert mine.source == "scim:okta"
    assert Membership.objects.get(user_id=kim, group=staff).source == "manual"
    found = api.get("Groups", filter='displayName eq "bo staff"', excludedAttributes="members")
    assert found.json()["Resources"][0]["id"] == gid
    assert "members" not in found.json()["Resources"][0]
    # Entra removes both by value: only the membership SCIM gave goes.
    response = api.patch(
        f"Groups/{gid}",
        entra_patch(
            {"op": "Remove", "path": "members", "value": [{"value": jo}, {"value": kim}]},
        ),
    )
    assert response.status_code == 204, response.content
    assert not Membership.objects.filter(user_id=jo, group=staff).exists()
    assert Membership.objects.get(user_id=kim, group=staff).source == "manual"
    # Add back by value, then a rename to an unmapped name takes it away again.
    api.patch(
        f"Groups/{gid}",
        entra_patch({"op": "Add", "path": "members", "value": [{"value": jo}]}),
    )
    assert Membership.objects.filter(user_id=jo, group=staff, source="scim:okta").exists()
    api.patch(
        f"Groups/{gid}", entra_patch({"op": "Replace", "path": "displayName", "value": "Other"})
    )
    assert not Membership.objects.filter(user_id=jo, group=staff).exists()
    # Deleting the SCIM group leaves local groups and manual memberships.
    api.patch(
        f"Groups/{gid}",
        entra_patch({"op": "Replace", "path": "displayName", "value": "BO Staff"}),
    )
    assert api.delete(f"Groups/{gid}").status_code == 204
    assert not Membership.objects.filter(user_id=jo, group=staff).exists()
    assert Membership.objects.get(user_id=kim, group=staff).source == "manual"
    assert Group.objects.filter(name="backoffice-users").exists()
    assert AuditEvent.objects.filter(action="scim.groups_synced", actor_label="scim:okta").exists()


def test_a_map_pointing_at_root_is_refused_by_the_ceiling(client, user_admins):
    api = Scim(
        client,
        make_token(
            "entra",
            group_map={"Admins": "root", "Staff": "user-admins"},
            ceiling=["user-admins"],
        ),
    )
    jo = api.post("Users", entra_user()).json()["id"]
    response = api.post("Groups", entra_group("Admins", members=[jo]))
    assert response.status_code == 201  # the SCIM group exists; root is not given
    assert not Membership.objects.filter(user_id=jo, group__name="root").exists()
    refused = AuditEvent.objects.get(action="scim.group_sync_refused")
    assert refused.outcome == "failure" and refused.details["refused"]["give"] == ["root"]
    # Within the ceiling: given.
    api.post("Groups", entra_group("Staff", members=[jo], external_id="g-2"))
    assert Membership.objects.filter(user_id=jo, group=user_admins, source="scim:entra").exists()


def test_a_bounded_client_cannot_touch_an_account_above_its_ceiling(client, user_admins):
    api = Scim(client, make_token("entra", ceiling=["user-admins"]))
    boss = UserFactory(email="boss@shop.example", groups=["root"])
    UserFactory(email="boss2@shop.example", groups=["root"])
    response = api.post("Users", entra_user("boss@shop.example", external_id="e-boss"))
    assert_error(response, 403)
    response = api.patch(
        f"Users/{boss.pk}", entra_patch({"op": "Replace", "path": "active", "value": "False"})
    )
    assert_error(response, 403)
    boss.refresh_from_db()
    assert boss.is_active
    assert AuditEvent.objects.filter(
        action="access.grant_refused", actor_label="scim:entra", outcome="failure"
    ).exists()


def test_a_ceiling_without_user_rights_can_create_nothing(client):
    role = RoleFactory(name="view-only")
    RuleFactory(role=role, pattern="backoffice:users:view")
    GroupFactory(name="viewers", roles=[role])
    api = Scim(
        client, make_token("weak", group_map={"Staff": "backoffice-users"}, ceiling=["viewers"])
    )
    assert_error(api.post("Users", entra_user()), 403)
    assert not User.objects.filter(email="jo@shop.example").exists()
    # Nor give a group, even one that grants nothing (groups need users:edit).
    kim = UserFactory(email="kim@shop.example")
    assert api.post("Groups", entra_group("Staff", members=[kim.pk])).status_code == 201
    assert not kim.memberships.exists()
    refused = AuditEvent.objects.get(action="scim.group_sync_refused")
    assert refused.details["refused"] == {"right": "backoffice:users:edit"}


# --- tokens --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Bearer wrong",
        "Basic dXNlcjpwYXNz",
        "Bearer scim_0123456789abcdef.nope",
    ],
)
def test_bad_tokens_are_401_json_and_audited(client, header):
    make_token()
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = client.get("/scim/v2/Users", **extra)
    body = assert_error(response, 401)
    assert "Bearer" in response["WWW-Authenticate"]
    assert "detail" in body
    assert AuditEvent.objects.filter(action="scim.auth_failed", outcome="failure").count() == 1


def test_a_token_is_stored_hashed_and_a_tampered_one_fails(client):
    token = make_token()
    row = ScimClient.objects.get(name="entra")
    assert token.split(".", 1)[1] not in (row.secret_hash, row.key)
    ok = client.get("/scim/v2/Users", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert ok.status_code == 200
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert client.get("/scim/v2/Users", HTTP_AUTHORIZATION=f"Bearer {tampered}").status_code == 401


def test_revoked_token_is_refused(client):
    token = make_token()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    assert client.get("/scim/v2/Users", **headers).status_code == 200
    out = StringIO()
    call_command("scimtoken", "revoke", "entra", stdout=out)
    assert_error(client.get("/scim/v2/Users", **headers), 401)
    assert AuditEvent.objects.filter(action="scim.client_revoked").exists()
    listing = StringIO()
    call_command("scimtoken", "list", stdout=listing)
    assert "entra\trevoked" in listing.getvalue()
    assert token not in listing.getvalue()


# --- bad bodies ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body,scim_type",
    [
        ("{not json", "invalidSyntax"),
        ("[1, 2]", "invalidSyntax"),
        ('"text"', "invalidSyntax"),
        (json.dumps(entra_user(favouriteColour="blue")), None),
        (json.dumps({"schemas": [USER_SCHEMA]}), None),
        (json.dumps(entra_user("not-an-address")), "invalidValue"),
        (json.dumps(entra_user(active="perhaps")), None),
        (json.dumps(entra_user(name={"givenName": "\u202eevil", "familyName": "x"})), None),
        (json.dumps(entra_user(userName="a\x00@shop.example")), None),
    ],
)
def test_bad_user_bodies_are_400(scim, body, scim_type):
    before = User.objects.count()
    assert_error(scim.post("Users", body), 400, scim_type)
    assert User.objects.count() == before


@pytest.mark.parametrize(
    "operations",
    [
        [{"op": "Frobnicate", "path": "active", "value": True}],
        [{"op": "Replace", "path": "nosuch.attr", "value": 1}],
        [{"op": "Remove"}],
        [{"op": "Replace", "path": 'emails[type eq "work"', "value": "x"}],
        [],
        "not a list",
    ],
)
def test_bad_patches_are_400(scim, operations):
    pk = scim.post("Users", entra_user()).json()["id"]
    body = {"schemas": [PATCH_SCHEMA], "Operations": operations}
    assert_error(scim.patch(f"Users/{pk}", body), 400)
    assert User.objects.get(pk=pk).first_name == "Jo"


def test_huge_bodies_are_413(scim):
    huge = json.dumps(entra_user(displayName="x" * (1024 * 1024 + 10)))
    assert_error(scim.post("Users", huge), 413)


def test_unknown_places_and_methods_answer_scim_errors(scim):
    assert_error(scim.get("Nowhere"), 404)
    assert_error(scim.get("Users/abc"), 404)
    assert_error(scim.get("Groups/99999"), 404)
    assert_error(scim.send("PUT", "Users", {}), 405)


# --- discovery -----------------------------------------------------------------------


def test_discovery(scim):
    config = scim.get("ServiceProviderConfig").json()
    assert config["patch"]["supported"] is True
    assert config["filter"]["supported"] is True
    assert config["authenticationSchemes"][0]["type"] == "oauthbearertoken"
    types = scim.get("ResourceTypes").json()
    assert {r["name"] for r in types["Resources"]} == {"User", "Group"}
    assert scim.get("ResourceTypes/User").json()["endpoint"] == "/Users"
    schemas = scim.get("Schemas").json()
    ids = {s["id"] for s in schemas["Resources"]}
    assert {USER_SCHEMA, GROUP_SCHEMA} <= ids
    user_schema = scim.get(f"Schemas/{USER_SCHEMA}").json()
    assert any(a["name"] == "userName" for a in user_schema["attributes"])


# --- the rest of the rules -----------------------------------------------------------


def test_deactivating_the_last_manager_is_refused(scim):
    boss = UserFactory(email="boss@shop.example", groups=["root"], password="!")
    response = scim.patch(
        f"Users/{boss.pk}", entra_patch({"op": "Replace", "path": "active", "value": "False"})
    )
    assert_error(response, 403)
    boss.refresh_from_db()
    assert boss.is_active
    assert AuditEvent.objects.filter(action="access.lockout_refused").exists()
    assert not AuditEvent.objects.filter(action="scim.user_deactivated").exists()


def test_a_provisioned_account_gets_no_password_by_forgot_password(scim, client, mailoutbox):
    scim.post("Users", entra_user())
    client.post("/password/reset/", {"email": "jo@shop.example"})
    assert mailoutbox == []
    refused = AuditEvent.objects.get(action="password.reset.refused")
    assert refused.target_label == "jo@shop.example"


def test_a_mapped_group_cannot_be_renamed_or_deleted(client, user_admins):
    from accounts.audit import Actor
    from accounts.errors import AccountError
    from accounts.services import group_delete

    make_token(group_map={"Staff": "user-admins"})
    with pytest.raises(AccountError, match="SCIM group map"):
        group_delete(group=user_admins, by=Actor.system(label="test"))


def run_cli(*args):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "manage.py", "scimtoken", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "args,message",
    [
        (["--group-map", "{nope"], "--group-map is not valid JSON."),
        (["--group-map", '{"A": "no-such-group"}'], "No group named no-such-group."),
        (["--group-map", '{"A": 5}'], "must map each SCIM group name"),
        (["--group-map", "[]"], "must be a JSON object"),
        (["--max-group", "no-such-group"], "No group named no-such-group."),
    ],
)
def test_scimtoken_refusals_are_one_line(args, message):
    out = StringIO()
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match=message.replace(".", r"\.").replace("[", r"\[")):
        call_command("scimtoken", "create", "--name", "x", *args, stdout=out)
    assert out.getvalue() == ""
    assert not ScimClient.objects.exists()


def test_scimtoken_duplicate_name_and_unknown_revoke():
    from django.core.management.base import CommandError

    make_token("entra")
    with pytest.raises(CommandError, match="already exists"):
        make_token("entra")
    with pytest.raises(CommandError, match="No SCIM client named nope"):
        call_command("scimtoken", "revoke", "nope")


@pytest.mark.django_db(transaction=True)
def test_scimtoken_from_a_shell_prints_the_token_last_and_exits_1_on_error(tmp_path, settings):
    import os

    env_db = os.environ.get("DATABASE_URL")
    if env_db and not env_db.startswith("sqlite"):
        pytest.skip("the subprocess uses the SQLite file of a fresh install")
    from tests.servers import migrated_sqlite

    os.environ["DATABASE_URL"] = migrated_sqlite(tmp_path / "db.sqlite3")
    try:
        ok = run_cli("create", "--name", "entra", "--max-group", "backoffice-users")
        assert ok.returncode == 0, ok.stderr
        token = ok.stdout.strip().splitlines()[-1]
        assert token.startswith("scim_") and len(token) > 50
        listed = run_cli("list")
        assert "entra\tactive\tceiling=backoffice-users" in listed.stdout
        assert token not in listed.stdout
        bad = run_cli("create", "--name", "other", "--group-map", "{nope")
        assert bad.returncode == 1
        assert bad.stderr.strip() == "CommandError: --group-map is not valid JSON."
    finally:
        if env_db is None:
            del os.environ["DATABASE_URL"]
        else:
            os.environ["DATABASE_URL"] = env_db


def test_token_guessing_is_throttled_and_stops_filling_the_trail(client):
    make_token()
    statuses = [
        client.get("/scim/v2/Users", HTTP_AUTHORIZATION=f"Bearer guess{n}").status_code
        for n in range(35)
    ]
    assert statuses[:30] == [401] * 30
    assert statuses[30:] == [429] * 5
    response = client.get("/scim/v2/Users", HTTP_AUTHORIZATION="Bearer again")
    assert_error(response, 429)
    assert int(response["Retry-After"]) > 0
    assert AuditEvent.objects.filter(action="scim.auth_failed").count() == 30


def test_deactivation_also_ends_the_accounts_api_tokens(scim, client):
    from tests.api_support import account_token, bearer

    person = UserFactory(email="svc@shop.example", groups=["backoffice-users"])
    token = account_token(client, person, scopes=("read",))
    # Provisioned by this client earlier (an account with a password is not
    # adopted now).
    Account.objects.create(client=ScimClient.objects.get(), user=person, external_id="svc")
    assert client.get("/api/v1/me", **bearer(token)).status_code == 200
    response = scim.patch(
        f"Users/{person.pk}", entra_patch({"op": "Replace", "path": "active", "value": "False"})
    )
    assert response.status_code == 200
    assert client.get("/api/v1/me", **bearer(token)).status_code == 401


def test_attributes_parameters_and_search(scim):
    pk = scim.post("Users", entra_user()).json()["id"]
    only = scim.get(f"Users/{pk}", attributes="userName").json()
    assert only["userName"] == "jo@shop.example" and "name" not in only and only["id"] == pk
    without = scim.get("Users", excludedAttributes="name,emails").json()["Resources"][0]
    assert "name" not in without and "emails" not in without and "userName" in without
    assert_error(scim.get("Users", attributes="userName", excludedAttributes="name"), 400)
    search = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": 'userName eq "jo@shop.example"',
        "attributes": ["externalId"],
        "startIndex": 1,
        "count": 10,
    }
    found = scim.post("Users/.search", search)
    assert found.status_code == 200, found.content
    assert found.json()["totalResults"] == 1
    assert found.json()["Resources"][0]["externalId"] == "e-1"
    assert "name" not in found.json()["Resources"][0]
    bad = scim.post("Users/.search", {**search, "filter": "userName zz"})
    assert_error(bad, 400, "invalidFilter")
    assert_error(scim.post(".search", search), 501)
