"""SCIM adopting an existing account (issue 20, finding 1 c), through HTTP.

A provisioning client links an account it did not create when it first
writes it: a POST /Users with its address, a PUT/PATCH of its id (Entra
matches by `userName eq` and then PATCHes), or a group listing it as a
member. Once linked, the client's group map gives the account its groups.
So a link is a write: it needs users:edit and rank over the account, and
never takes an account holding a local credential (a password, a TOTP,
recovery codes, a security key or passkey) the provider cannot vouch for:
whoever set that credential would receive what the map gives.
"""

import pytest
from allauth.mfa.models import Authenticator

from accounts.models import AuditEvent, User
from scim.models import Account
from tests.factories import GroupFactory, RoleFactory, RuleFactory, UserFactory
from tests.support.scim import Scim, assert_error, entra_group, entra_patch, entra_user, make_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def mapped(client, db):
    """An operator-trusted client (no ceiling) whose map gives root."""
    UserFactory(email="boss@shop.example", groups=["root"])
    return Scim(client, make_token("entra", group_map={"Admins": "root"}))


def squatter(**extra):
    """The issue's account: someone's address, someone else's password."""
    return UserFactory(email="future.admin@shop.example", **extra)


def test_post_for_an_address_with_a_password_does_not_adopt_it(mapped):
    """Finding 1 (c): POST /Users for the address links the account, then
    the group map puts whoever holds its password into root."""
    account = squatter()
    response = mapped.post("Users", entra_user(account.email, external_id="e-admin"))
    body = assert_error(response, 409, "uniqueness")
    assert "local credentials" in body["detail"]
    assert not Account.objects.filter(user=account).exists()
    gid = mapped.post("Groups", entra_group("Admins", [account.pk])).json()["id"]
    assert gid
    assert not account.groups.filter(name="root").exists()
    refused = AuditEvent.objects.get(action="scim.user_link_refused")
    assert refused.outcome == "failure" and refused.target_id == str(account.pk)
    assert refused.details["client"] == "entra"
    assert refused.details["credentials"] == ["password"]
    assert refused.details["matched"] == "userName"


@pytest.mark.parametrize("kind", ["totp", "recovery_codes", "webauthn"])
def test_a_second_factor_alone_is_a_local_credential(mapped, kind):
    account = squatter(password="!")
    Authenticator.objects.create(user=account, type=kind, data={})
    assert_error(mapped.post("Users", entra_user(account.email)), 409, "uniqueness")
    assert not Account.objects.filter(user=account).exists()


def test_patch_by_id_does_not_adopt_either(mapped):
    """Entra matches with GET ?filter=userName eq, then PATCHes the id."""
    account = squatter()
    found = mapped.get("Users", filter=f'userName eq "{account.email}"').json()
    assert found["totalResults"] == 1
    response = mapped.patch(
        f"Users/{account.pk}", entra_patch({"op": "Replace", "path": "externalId", "value": "x"})
    )
    assert_error(response, 409, "uniqueness")
    assert not Account.objects.filter(user=account).exists()
    refused = AuditEvent.objects.get(action="scim.user_link_refused")
    assert refused.details["matched"] == "id"


def test_a_deactivation_of_an_account_it_cannot_adopt_still_blocks_it(mapped):
    """Entra's deprovisioning PATCH for a leaver whose account has a
    password: the account is blocked and its session ends, but not linked
    (the client still cannot give it groups or take it over)."""
    from django.test import Client

    from tests.conftest import login
    from tests.factories import PASSWORD

    account = squatter()
    browser = Client()
    assert login(browser, account.email, PASSWORD).status_code == 302
    response = mapped.patch(
        f"Users/{account.pk}", entra_patch({"op": "Replace", "path": "active", "value": "False"})
    )
    assert response.status_code == 200, response.content
    assert response.json()["active"] is False
    account.refresh_from_db()
    assert not account.is_active
    assert browser.get("/").status_code == 302  # the live session ended
    assert not Account.objects.filter(user=account).exists()
    event = AuditEvent.objects.get(action="scim.user_deactivated")
    assert event.details["linked"] is False
    # Anything more than a deactivation still needs the link it cannot have.
    response = mapped.patch(
        f"Users/{account.pk}", entra_patch({"op": "Replace", "path": "active", "value": "True"})
    )
    assert_error(response, 409, "uniqueness")
    account.refresh_from_db()
    assert not account.is_active


def test_a_group_member_with_a_password_is_left_out(mapped):
    account = squatter()
    response = mapped.post("Groups", entra_group("Admins", [account.pk]))
    assert response.status_code == 201, response.content
    assert not Account.objects.filter(user=account).exists()
    assert not account.groups.filter(name="root").exists()
    refused = AuditEvent.objects.get(action="scim.group_sync_refused")
    assert refused.details["refused"] == {"credentials": ["password"]}


def test_an_account_without_credentials_is_adopted_and_the_proof_audited(mapped):
    """An account with no password and no factor (made by hand for SSO, or
    by another provisioning client): nobody can log in to it but through
    the provider, so the client may take it over."""
    account = squatter(password="!")
    response = mapped.post("Users", entra_user(account.email, external_id="e-admin"))
    assert response.status_code == 201, response.content
    assert response.json()["id"] == str(account.pk)
    linked = AuditEvent.objects.get(action="scim.user_linked")
    assert linked.details["matched"] == "userName"
    assert linked.details["proof"] == "no local credentials"
    assert Account.objects.get(user=account).external_id == "e-admin"


def test_a_link_needs_users_edit(client):
    """A client whose ceiling may block but not edit cannot link (a
    deactivation alone blocks without a link: test_scim_deprovision_without_link)."""
    role = RoleFactory(name="blockers")
    RuleFactory(role=role, pattern="backoffice:users:view")
    RuleFactory(role=role, pattern="backoffice:users:block")
    GroupFactory(name="blockers", roles=[role])
    api = Scim(client, make_token("narrow", ceiling=["blockers"]))
    account = squatter(password="!")
    response = api.patch(
        f"Users/{account.pk}", entra_patch({"op": "Replace", "path": "externalId", "value": "x"})
    )
    assert_error(response, 403)
    account.refresh_from_db()
    assert account.is_active and not Account.objects.filter(user=account).exists()


def test_a_link_needs_rank(client):
    role = RoleFactory(name="user-admin")
    RuleFactory(role=role, pattern="backoffice:users:*")
    GroupFactory(name="user-admins", roles=[role])
    api = Scim(client, make_token("narrow", ceiling=["user-admins"]))
    boss = UserFactory(email="boss@shop.example", groups=["root"], password="!")
    UserFactory(email="boss2@shop.example", groups=["root"])
    assert_error(api.post("Users", entra_user(boss.email)), 403)
    assert not Account.objects.filter(user=boss).exists()


def test_an_account_the_client_made_stays_its_own(mapped):
    """The rule is about taking over: the client's own accounts (even one
    that set a password since) are written as before."""
    pk = mapped.post("Users", entra_user()).json()["id"]
    User.objects.get(pk=pk).set_password("a long enough passphrase 1")
    response = mapped.patch(
        f"Users/{pk}", entra_patch({"op": "Replace", "path": "name.givenName", "value": "Joanna"})
    )
    assert response.status_code == 200, response.content


def test_an_api_clients_service_account_is_out_of_scims_reach(mapped):
    """Neither listed, nor found by id, nor taken by its address: a SCIM
    group map must never give groups to what an API client acts as."""
    from tests.api_support import make_client

    api_client, _secret = make_client("client_credentials", name="shop-sync")
    service = api_client.account
    listed = mapped.get("Users").json()
    assert service.email not in {r["userName"] for r in listed["Resources"]}
    assert mapped.get(f"Users/{service.pk}").status_code == 404
    patch = entra_patch({"op": "Replace", "path": "active", "value": "False"})
    assert mapped.patch(f"Users/{service.pk}", patch).status_code == 404
    response = mapped.post("Users", entra_user(service.email, external_id="svc"))
    assert_error(response, 409, "uniqueness")
    assert "service account" in response.json()["detail"]
    assert not Account.objects.filter(user=service).exists()
    service.refresh_from_db()
    assert service.is_active and not service.groups.exists()
