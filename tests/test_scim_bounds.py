"""SCIM's bounds: a provisioning client with a narrow ceiling tries to reach
a wider power through HTTP, and each test says what it must find."""

import pytest

from accounts.models import AuditEvent, Group, Membership, User
from scim.models import Account
from scim.models import Client as ScimClient
from tests.factories import GroupFactory, RoleFactory, RuleFactory, UserFactory
from tests.support.scim import Scim, assert_error, entra_group, entra_patch, entra_user, make_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def narrow(client):
    """A client whose ceiling is user management only (users:*), mapping a
    SCIM group onto root and one onto its own ceiling group."""
    role = RoleFactory(name="user-admin")
    RuleFactory(role=role, pattern="backoffice:users:*")
    GroupFactory(name="user-admins", roles=[role])
    token = make_token(
        "entra",
        group_map={"Admins": "root", "Staff": "user-admins"},
        ceiling=["user-admins"],
    )
    return Scim(client, token)


@pytest.fixture
def boss(db):
    """A root account (and a second one, so blocking one would not be a lockout)."""
    UserFactory(email="boss2@shop.example", groups=["root"])
    return UserFactory(email="boss@shop.example", groups=["root"])


def _replace(path, value):
    return entra_patch({"op": "Replace", "path": path, "value": value})


# --- F1: relinking an account above the ceiling ------------------------------------------


def test_externalid_of_an_account_above_the_ceiling_cannot_be_set(narrow, boss):
    """Changing only externalId skipped the account services (and so the rank
    check): a narrow client linked a root account and set its externalId."""
    response = narrow.patch(f"Users/{boss.pk}", _replace("externalId", "attacker-object-id"))
    assert_error(response, 403)
    assert not Account.objects.filter(user=boss).exists()
    updated = AuditEvent.objects.filter(action="scim.user_updated", target_id=str(boss.pk))
    assert not updated.exists()


def test_put_of_an_account_above_the_ceiling_with_only_a_new_externalid_is_refused(narrow, boss):
    body = entra_user(boss.email, external_id="attacker-object-id")
    body["name"] = {"givenName": boss.first_name, "familyName": boss.last_name}
    assert_error(narrow.put(f"Users/{boss.pk}", body), 403)
    assert not Account.objects.filter(user=boss).exists()


def test_externalid_of_an_account_within_the_ceiling_still_changes(narrow):
    jo = narrow.post("Users", entra_user()).json()["id"]
    response = narrow.patch(f"Users/{jo}", _replace("externalId", "e-2"))
    assert response.status_code == 200, response.content
    assert Account.objects.get(user_id=jo).external_id == "e-2"


# --- refused already: a wider power through the account's fields -----------------------


@pytest.mark.parametrize("email", ["boss@shop.example", "BOSS@Shop.Example", " boss@shop.example "])
def test_post_with_a_root_address_does_not_take_the_account(narrow, boss, email):
    response = narrow.post("Users", entra_user(email, external_id="e-boss", active=False))
    assert_error(response, 403)
    boss.refresh_from_db()
    assert boss.is_active and not Account.objects.filter(user=boss).exists()


def test_username_cannot_move_onto_an_admin_address(narrow, boss):
    jo = narrow.post("Users", entra_user()).json()["id"]
    response = narrow.patch(f"Users/{jo}", _replace("userName", "Boss@shop.example"))
    assert response.status_code in (400, 409), response.content
    assert User.objects.get(pk=jo).email == "jo@shop.example"
    assert User.objects.filter(email="boss@shop.example").count() == 1


@pytest.mark.parametrize(
    "patch",
    [
        _replace("active", "False"),
        _replace("userName", "mine@evil.example"),
        _replace("name.familyName", "Pwned"),
    ],
)
def test_a_root_account_cannot_be_blocked_or_renamed(narrow, boss, patch):
    assert_error(narrow.patch(f"Users/{boss.pk}", patch), 403)
    boss.refresh_from_db()
    assert boss.is_active and boss.email == "boss@shop.example" and boss.last_name != "Pwned"


def test_a_root_account_cannot_be_deleted_even_once_in_a_scim_group(narrow, boss):
    # Putting root in a SCIM group gives no link to it, nor rank over it.
    assert narrow.post("Groups", entra_group("Elsewhere", members=[boss.pk])).status_code == 201
    response = narrow.delete(f"Users/{boss.pk}")
    assert response.status_code in (400, 403), response.content
    assert User.objects.filter(pk=boss.pk).exists()


def test_a_password_sent_with_a_user_is_never_kept(narrow, password):
    """Linking a local account by its address and sending a password does
    not let the client (or whoever it says) log in with it."""
    local = UserFactory(email="local@shop.example")
    local.set_password(password)
    local.save()
    body = entra_user("local@shop.example", external_id="e-local", password="Chosen-by-1dp!")
    assert narrow.post("Users", body).status_code == 409  # its password: not adopted
    jo = narrow.post("Users", entra_user(password="Chosen-by-1dp!")).json()["id"]
    local.refresh_from_db()
    assert local.check_password(password) and not local.check_password("Chosen-by-1dp!")
    assert not User.objects.get(pk=jo).has_usable_password()
    patch = entra_patch({"op": "Replace", "path": "password", "value": "Chosen-by-1dp!"})
    narrow.patch(f"Users/{local.pk}", patch)
    local.refresh_from_db()
    assert local.check_password(password)


def test_a_scim_group_cannot_link_an_account_above_the_ceiling(narrow, boss, client):
    """A link makes a password-less account SSO-only (no reset mail, no
    passwordless passkey): a narrow client putting root in any SCIM group
    would switch root's ways back in off. Root is left out of the group."""
    boss.set_unusable_password()
    boss.save()
    jo = narrow.post("Users", entra_user()).json()["id"]
    response = narrow.post("Groups", entra_group("Elsewhere", members=[boss.pk, jo]))
    assert response.status_code == 201, response.content
    assert [m["value"] for m in response.json()["members"]] == [jo]
    gid = response.json()["id"]
    add = entra_patch({"op": "Add", "path": "members", "value": [{"value": str(boss.pk)}]})
    assert narrow.patch(f"Groups/{gid}", add).status_code == 204
    assert not Account.objects.filter(user=boss).exists()
    refused = AuditEvent.objects.filter(action="scim.group_sync_refused", target_id=str(boss.pk))
    assert refused.count() == 2
    client.post("/password/reset/", {"email": "boss@shop.example"})
    assert AuditEvent.objects.filter(
        action="password.reset.requested", target_id=str(boss.pk)
    ).exists()


def test_nobody_becomes_root_through_the_map_or_a_group_named_root(narrow):
    jo = narrow.post("Users", entra_user()).json()["id"]
    narrow.post("Groups", entra_group("Admins", members=[jo]))
    narrow.post("Groups", entra_group("root", members=[jo], external_id="g-2"))
    assert not Membership.objects.filter(user_id=jo, group__name="root").exists()
    assert AuditEvent.objects.filter(action="scim.group_sync_refused").exists()


def test_root_keeps_its_groups_when_put_in_and_out_of_mapped_groups(narrow, boss):
    staff = narrow.post("Groups", entra_group("Staff", members=[boss.pk])).json()["id"]
    narrow.patch(
        f"Groups/{staff}",
        entra_patch({"op": "Remove", "path": "members", "value": [{"value": str(boss.pk)}]}),
    )
    assert set(boss.memberships.values_list("group__name", "source")) == {("root", "manual")}
    refused = AuditEvent.objects.filter(action="scim.group_sync_refused", target_id=str(boss.pk))
    assert refused.exists()


def test_a_membership_an_admin_gave_is_never_taken_away(narrow):
    jo = narrow.post("Users", entra_user()).json()["id"]
    admins = Group.objects.get(name="user-admins")
    Membership.objects.create(user_id=jo, group=admins)  # by hand
    gid = narrow.post("Groups", entra_group("Staff", members=[jo])).json()["id"]
    assert narrow.delete(f"Groups/{gid}").status_code == 204
    assert Membership.objects.get(user_id=jo, group=admins).source == "manual"


def test_another_clients_groups_are_out_of_reach(narrow, client):
    other = Scim(client, make_token("okta", group_map={"Staff": "user-admins"}))
    jo = other.post("Users", entra_user()).json()["id"]
    gid = other.post("Groups", entra_group("Staff", members=[jo])).json()["id"]
    assert_error(narrow.get(f"Groups/{gid}"), 404)
    assert_error(narrow.delete(f"Groups/{gid}"), 404)
    assert_error(narrow.patch(f"Groups/{gid}", _replace("displayName", "Gone")), 404)
    # Nor can its own group of the same name take the other client's membership.
    mine = narrow.post("Groups", entra_group("Staff", members=[jo])).json()["id"]
    narrow.delete(f"Groups/{mine}")
    assert Membership.objects.filter(user_id=jo, source="scim:okta").exists()


def test_externalid_lookups_see_only_the_clients_own(narrow, client):
    other = Scim(client, make_token("okta"))
    other.post("Users", entra_user(external_id="okta-1"))
    found = narrow.get("Users", filter='externalId eq "okta-1"').json()
    assert found["totalResults"] == 0


# --- F2: a PATCH computed from the state before a concurrent write -------------------

_pg_only = pytest.mark.skipif(
    "postgres" not in __import__("os").environ.get("DATABASE_URL", ""),
    reason="holds PostgreSQL's advisory lock while a live-server request waits on it",
)


def _waiting_on_the_lock(conn) -> bool:
    with conn.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        return cursor.fetchone()[0] > 0


def _while_a_patch_waits(base, token, path, body, write):
    """Start a PATCH over real HTTP; once it has read the resource and waits
    for the access lock, run `write` (the concurrent request's change) and
    commit; then let the PATCH finish. Its response."""
    import threading
    import time

    import requests
    from django.db import connection, transaction

    from accounts.delegation import LOCK_KEY

    result = {}
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}

    def send():
        result["response"] = requests.patch(
            f"{base}/scim/v2/{path}", json=body, headers=headers, timeout=60
        )

    thread = threading.Thread(target=send)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        thread.start()
        deadline = time.monotonic() + 30
        while not _waiting_on_the_lock(connection):
            assert time.monotonic() < deadline, "the PATCH never reached the lock"
            time.sleep(0.02)
        write()
    thread.join(60)
    return result["response"]


@_pg_only
@pytest.mark.django_db(transaction=True)
def test_a_concurrent_name_patch_does_not_unblock_a_deactivated_account(live_server):
    import requests

    from scim import services

    token = make_token("entra")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
    url = f"{live_server.url}/scim/v2/Users"
    jo = requests.post(url, json=entra_user(), headers=headers, timeout=30).json()["id"]
    scim_client = ScimClient.objects.get(name="entra")

    def deactivate():  # Entra's other worker: the person left
        user = User.objects.get(pk=jo)
        data = services.UserData(user.email, user.first_name, user.last_name, False, "e-1")
        services.user_write(
            client=scim_client, user=user, data=data, by=services.client_actor(scim_client)
        )

    response = _while_a_patch_waits(
        live_server.url, token, f"Users/{jo}", _replace("name.familyName", "Smith"), deactivate
    )
    assert response.status_code == 200, response.text
    user = User.objects.get(pk=jo)
    assert user.last_name == "Smith"
    assert not user.is_active  # the block stands


@_pg_only
@pytest.mark.django_db(transaction=True)
def test_a_concurrent_member_patch_does_not_give_back_a_removed_group(live_server):
    import requests

    from scim import services
    from scim.models import Group as ScimGroup

    admins_role = RoleFactory(name="user-admin")
    RuleFactory(role=admins_role, pattern="backoffice:users:*")
    local = GroupFactory(name="user-admins", roles=[admins_role])
    token = make_token("entra", group_map={"Staff": "user-admins"})
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
    base = f"{live_server.url}/scim/v2"
    jo = requests.post(f"{base}/Users", json=entra_user(), headers=headers, timeout=30)
    jo = jo.json()["id"]
    kim = requests.post(
        f"{base}/Users", json=entra_user("kim@shop.example", "e-kim"), headers=headers, timeout=30
    ).json()["id"]
    gid = requests.post(
        f"{base}/Groups", json=entra_group("Staff", members=[jo]), headers=headers, timeout=30
    ).json()["id"]
    assert Membership.objects.filter(user_id=jo, group=local).exists()
    scim_client = ScimClient.objects.get(name="entra")

    def remove_jo():  # the other request: Jo leaves the group
        group = ScimGroup.objects.get(pk=gid)
        data = services.GroupData("Staff", "g-1", set())
        services.group_write(
            client=scim_client, group=group, data=data, by=services.client_actor(scim_client)
        )

    add_kim = entra_patch({"op": "Add", "path": "members", "value": [{"value": kim}]})
    response = _while_a_patch_waits(live_server.url, token, f"Groups/{gid}", add_kim, remove_jo)
    assert response.status_code == 204, response.text
    assert Membership.objects.filter(user_id=kim, group=local).exists()
    assert not Membership.objects.filter(user_id=jo, group=local).exists()  # stays removed
