"""Client-credentials API clients act as their own service account, capped by
whoever holds the secret (issue 20, finding 2).

The attack: a narrow admin (api-clients:* + users:view) makes a
client-credentials client for a low or brand-new empty account; root later
promotes that account (or the service account); the saved secret must not
mint tokens that act beyond what the narrow admin may do. Every door is the
real one: the screens over HTTP, the token endpoint with HTTP Basic client
authentication, the JSON API with the bearer token.
"""

import pytest
from django.core.management import call_command
from django.test import Client as Http
from oauth2_provider.models import AccessToken

from accounts import services as account_services
from accounts.audit import Actor
from accounts.models import AuditEvent, EmailChange, Group, User
from api.models import Client
from tests.api_support import basic, bearer, client_token, make_client
from tests.conftest import login
from tests.factories import PASSWORD, UserFactory
from tests.support.people import admin_with

pytestmark = pytest.mark.django_db

ROOT_BODY = {"email": "mallory@shop.example", "first_name": "M", "last_name": "M",
             "groups": ["root"]}  # fmt: skip


def browser(user) -> Http:
    http = Http()
    assert login(http, user.email, PASSWORD).status_code == 302
    return http


def secret_on(page) -> str:
    return page.content.decode().split('data-testid="client-secret">')[1].split("<")[0]


def narrow_admin() -> User:
    return admin_with("backoffice:api-clients:*", "backoffice:users:view", name="integrators")


def create_on_screen(admin, **extra) -> tuple[Client, str]:
    """The narrow admin adds a client-credentials client on the screen."""
    body = {"name": "Reports", "grant": "client_credentials", "scopes": "read write", **extra}
    page = browser(admin).post("/api-clients/add/", body)
    assert page.status_code == 200, page.content.decode()[:2000]
    return Client.objects.get(name="Reports"), secret_on(page)


def token_of(client, secret) -> str:
    response = client_token(Http(), client, secret)
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def me(token) -> dict:
    return Http().get("/api/v1/me", **bearer(token)).json()


def post_users(token, body):
    return Http().post("/api/v1/users", body, content_type="application/json", **bearer(token))


def promote(user, *, by, group="root"):
    account_services.user_update(
        user=user, email=user.email, first_name=user.first_name, last_name=user.last_name,
        groups=[*user.groups.all(), Group.objects.get(name=group)], active=True,
        by=Actor(user=by),
    )  # fmt: skip


class TestEscalation:
    def test_promoting_the_person_named_at_creation_gives_the_client_nothing(self, root_user):
        """The issue's path: the narrow admin names a brand-new empty account;
        root promotes it to root; the saved secret must not act as root."""
        newcomer = UserFactory(email="new-it-admin@shop.example")
        client, secret = create_on_screen(narrow_admin(), account=newcomer.email)
        promote(newcomer, by=root_user)
        token = token_of(client, secret)
        assert post_users(token, ROOT_BODY).status_code == 403  # not root
        assert not User.objects.filter(email="mallory@shop.example").exists()
        assert me(token)["email"] != newcomer.email
        assert "backoffice:users:create" not in me(token)["token"]["permissions"]

    def test_a_service_account_promoted_above_its_holder_stays_capped(self, root_user):
        admin = narrow_admin()
        client, secret = create_on_screen(admin)
        service = client.account
        assert service.is_service and not service.groups.exists()
        assert client.secret_holder == admin
        # Root promotes the service account on the user screen: told to rotate.
        page = browser(root_user).post(
            f"/users/{service.pk}/",
            {"first_name": service.first_name, "last_name": service.last_name,
             "email": service.email, "groups": [Group.objects.get(name="root").pk],
             "status": "active", "language": ""},
            follow=True,
        )  # fmt: skip
        assert service.groups.filter(name="root").exists()
        assert "Replace the secret" in page.content.decode()
        token = token_of(client, secret)
        mine = set(me(token)["token"]["permissions"])
        assert "backoffice:users:create" not in mine and "backoffice:users:view" in mine
        assert all(p.startswith(("backoffice:users:view", "backoffice:api-clients:")) for p in mine)
        assert Http().get("/api/v1/users", **bearer(token)).status_code == 200
        refused = post_users(token, ROOT_BODY)
        assert refused.status_code == 403 and "holder" in refused.json()["error_description"]
        assert (
            'data-testid="holder-cap"'
            in browser(root_user).get(f"/api-clients/{client.pk}/").content.decode()
        )
        # Root replaces the secret: root holds it now and the cap lifts.
        new = secret_on(browser(root_user).post(f"/api-clients/{client.pk}/secret/"))
        assert post_users(token_of(client, new), ROOT_BODY).status_code == 201

    def test_the_cap_is_read_at_every_use_not_at_issue(self, root_user):
        admin = admin_with("backoffice:api-clients:*", "backoffice:users:*", name="integrators")
        client, secret = create_on_screen(admin)
        promote(client.account, by=root_user)
        token = token_of(client, secret)
        body = {"email": "a@shop.example", "first_name": "A", "last_name": "B"}
        assert post_users(token, body).status_code == 201
        # The holder loses users:create: the same token loses it on its next call.
        admin.groups.get().roles.get().rules.filter(pattern="backoffice:users:*").update(
            pattern="backoffice:users:view"
        )
        from accounts.access import changed

        changed(User.objects.filter(pk=admin.pk))
        body["email"] = "b@shop.example"
        assert post_users(token, body).status_code == 403

    @pytest.mark.parametrize("change", ["block", "delete"])
    def test_a_blocked_or_deleted_holder_leaves_the_client_nothing(self, root_user, change):
        admin = narrow_admin()
        client, secret = create_on_screen(admin)
        promote(client.account, by=root_user)
        token = token_of(client, secret)
        assert Http().get("/api/v1/users", **bearer(token)).status_code == 200
        if change == "block":
            account_services.user_set_status(user=admin, active=False, by=Actor(user=root_user))
        else:
            account_services.user_delete(user=admin, by=Actor(user=root_user))
        # Its tokens end with the holder (revoked; were one left, its cap is empty).
        assert Http().get("/api/v1/users", **bearer(token)).status_code == 401
        refused = client_token(Http(), client, secret)
        assert (
            refused.status_code in (400, 401) and refused.json()["error"] == "unauthorized_client"
        )
        event = AuditEvent.objects.filter(action="api.token.refused").latest("id")
        assert event.details["reason"] == "secret_holder_gone"


class TestServiceAccounts:
    def test_a_service_account_never_logs_in(self, root_user):
        client, _ = make_client()
        service = client.account
        service.set_password(PASSWORD)  # even were a password set somehow
        service.save()
        assert login(Http(), service.email, PASSWORD).status_code != 302
        forced = Http()
        forced.force_login(service)
        assert forced.get("/").status_code == 302  # the session is not honoured

    def test_a_service_account_never_counts_as_a_manager(self, root_user):
        client, _ = make_client(groups_from=root_user)
        assert client.account.groups.filter(name="root").exists()
        with pytest.raises(account_services.AccountError):
            account_services.user_update(
                user=root_user, email=root_user.email, first_name="G", last_name="H",
                groups=[], active=True, by=Actor.system(),
            )  # fmt: skip
        assert root_user.groups.filter(name="root").exists()

    def test_deleting_the_client_deletes_its_service_account(self, root_user):
        client, _ = make_client()
        service = client.account
        browser(root_user).post(f"/api-clients/{client.pk}/delete/")
        assert not User.objects.filter(pk=service.pk).exists()

    def test_the_user_page_lists_the_clients_acting_for_the_account(self, root_user):
        admin = narrow_admin()
        client, secret = create_on_screen(admin)
        person_client, person_secret = make_client("password", name="Phone app")
        Http().post("/oauth/token/", {"grant_type": "password", "username": admin.email,
                                      "password": PASSWORD},
                    HTTP_AUTHORIZATION=basic(person_client.client_id, person_secret))  # fmt: skip
        http = browser(root_user)
        service_page = http.get(f"/users/{client.account.pk}/security/").content.decode()
        assert "Reports" in service_page and "acts as this service account" in service_page
        person_page = http.get(f"/users/{admin.pk}/security/").content.decode()
        assert "Reports" in person_page and "holds its secret" in person_page
        assert "Phone app" in person_page and "live tokens" in person_page


class TestAudit:
    def test_every_api_action_names_the_client(self, root_user):
        client, secret = make_client(groups_from=root_user, scopes=["read", "write"], name="Sync")
        token = token_of(client, secret)
        body = {"email": "a@shop.example", "first_name": "A", "last_name": "B"}
        assert post_users(token, body).status_code == 201
        created = AuditEvent.objects.get(action="user.created")
        assert created.details["client"] == "Sync"
        assert created.actor == client.account
        assert created.actor_label == f"{client.account.email} via client Sync"
        assert post_users(token, ROOT_BODY | {"groups": ["nope"]}).status_code == 400
        editor = admin_with("backoffice:users:view", name="viewers")
        response = Http().patch(f"/api/v1/users/{editor.pk}", {"first_name": "X"},
                                content_type="application/json", **bearer(token))  # fmt: skip
        assert response.status_code == 200
        assert AuditEvent.objects.get(action="user.updated").details["client"] == "Sync"

    def test_a_refusal_and_a_person_token_name_their_client_too(self, root_user):
        person = admin_with("backoffice:users:view", "backoffice:users:edit", name="editors")
        app, app_secret = make_client("password", scopes=["read", "write"], name="Phone app")
        token = Http().post("/oauth/token/", {"grant_type": "password", "username": person.email,
                                              "password": PASSWORD},
                            HTTP_AUTHORIZATION=basic(app.client_id, app_secret)).json()  # fmt: skip
        response = Http().patch(f"/api/v1/users/{person.pk}", {"groups": ["editors", "root"]},
                                content_type="application/json",
                                **bearer(token["access_token"]))  # fmt: skip
        assert response.status_code == 403
        refused = AuditEvent.objects.get(action="access.grant_refused")
        assert refused.details["client"] == "Phone app" and refused.actor == person
        assert refused.actor_label == f"{person.email} via client Phone app"


class TestCommandAndMigration:
    def test_cli_user_gives_the_new_service_account_the_persons_groups(self, capsys):
        person = UserFactory(email="svc@shop.example", groups=["backoffice-users"])
        call_command("apiclient", "create", "--name", "Shop sync", "--grant",
                     "client_credentials", "--user", "SVC@shop.example")  # fmt: skip
        client_id = capsys.readouterr().out.splitlines()[0].split("=", 1)[1]
        client = Client.objects.get(client_id=client_id)
        assert client.account != person and client.account.is_service
        assert list(client.account.groups.values_list("name", flat=True)) == ["backoffice-users"]
        assert client.secret_by_operator and client.secret_holder is None

    @pytest.mark.django_db(transaction=True)
    def test_the_migration_keeps_an_existing_bound_client_working(self, seed_groups):
        """A client bound to a person before: `manage.py migrate` gives it its
        own service account with the person's groups, the person holds its
        secret, and both its live token and its secret keep working."""
        call_command("migrate", "api", "0002", verbosity=0)  # before the data migration
        UserFactory(email="root@shop.example", groups=["root"])
        person = admin_with("backoffice:users:view", name="viewers", email="ops@shop.example")
        client = Client(name="Legacy", client_type="confidential",
                        authorization_grant_type=Client.GRANT_CLIENT_CREDENTIALS,
                        account=person, scope="read", client_secret="s3cret-" * 6,
                        hash_client_secret=True)  # fmt: skip
        client.save()
        AccessToken.objects.create(user=person, application=client, token="l" * 30,
                                   scope="read", expires="2999-01-01T00:00Z")  # fmt: skip
        call_command("migrate", "api", verbosity=0)
        client.refresh_from_db()
        service = client.account
        assert service.is_service and service != person
        assert list(service.groups.values_list("name", flat=True)) == ["viewers"]
        assert client.secret_holder == person and not client.secret_by_operator
        assert Http().get("/api/v1/users", **bearer("l" * 30)).status_code == 200
        assert me(token_of(client, "s3cret-" * 6))["email"] == service.email


def test_a_token_left_behind_carries_nothing_once_its_holder_is_blocked(root_user):
    """Were a token to survive its holder's blocking (a crash between the two
    writes), its cap is read at use: empty."""
    admin = narrow_admin()
    client, secret = create_on_screen(admin)
    promote(client.account, by=root_user)
    token = token_of(client, secret)
    User.objects.filter(pk=admin.pk).update(status=User.Status.BLOCKED)  # no hooks run
    assert Http().get("/api/v1/users", **bearer(token)).status_code == 403
    assert me(token)["token"]["permissions"] == []


def test_a_service_account_gets_no_reset_mail_and_no_password_grant(root_user, mailoutbox):
    client, _ = make_client(groups_from=root_user)
    service = client.account
    service.set_password(PASSWORD)  # even were a password set somehow
    service.save()
    answer = Http().post("/password/reset/", {"email": service.email})
    assert answer.status_code in (200, 302)
    assert not [m for m in mailoutbox if service.email in m.to]
    app, app_secret = make_client("password", scopes=["read"], name="Phone app")
    refused = Http().post("/oauth/token/", {"grant_type": "password", "username": service.email,
                                            "password": PASSWORD},
                          HTTP_AUTHORIZATION=basic(app.client_id, app_secret))  # fmt: skip
    assert refused.status_code in (400, 401) and "access_token" not in refused.json()


def test_an_admin_cannot_send_a_service_account_a_reset_link(root_user, mailoutbox):
    client, _ = make_client()
    page = browser(root_user).post(f"/users/{client.account.pk}/password-reset/", follow=True)
    assert "is a service account" in page.content.decode()
    assert not mailoutbox


def test_sso_never_logs_in_as_a_service_account(client, settings):
    """A provider vouching for a service account's address (an IdP user who
    could choose it) gets no link, no ROLE_MAP groups and no session."""
    from sso.models import Identity
    from tests.oidc_fake import FakeIdP

    api_client, _ = make_client()
    service = api_client.account
    idp = FakeIdP()
    try:
        settings.IAM_SSO_PROVIDERS = {"fake": idp.oidc_config()}
        start = client.post("/sso/fake/login/")
        claims = {"sub": "mallory", "email": service.email, "email_verified": True,
                  "given_name": "M", "family_name": "M"}  # fmt: skip
        response = client.get(idp.authorize(start["Location"], claims))
    finally:
        idp.close()
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert "_auth_user_id" not in client.session
    assert not Identity.objects.filter(user=service).exists()
    event = AuditEvent.objects.filter(action="sso.failed").latest("id")
    assert event.details["reason"] == "service_account"


def test_promoting_through_a_group_or_a_role_tells_to_rotate_too(root_user):
    from tests.factories import GroupFactory, RoleFactory, RuleFactory

    admin = narrow_admin()
    client, _ = create_on_screen(admin)
    role = RoleFactory(name="readers")
    RuleFactory(role=role, pattern="backoffice:groups:view")
    group = GroupFactory(name="integrations")
    promote(client.account, by=root_user, group="integrations")
    http = browser(root_user)
    page = http.post(f"/groups/{group.pk}/", {"name": "integrations", "description": "",
                                              "roles": [role.pk]}, follow=True)  # fmt: skip
    assert "Replace the secret" in page.content.decode()
    page = http.post(f"/roles/{role.pk}/", {"name": "readers", "description": "",
                                            "rules": "allow backoffice:groups:view\n"
                                                     "allow backoffice:roles:view"},
                     follow=True)  # fmt: skip
    assert "Replace the secret" in page.content.decode()


def test_a_service_accounts_address_cannot_be_changed_on_the_screens(client, root_user):
    """Its address is made with the client and never mailed: no change of
    address is asked for (a confirmation link nobody could follow)."""
    api_client, _secret = make_client("client_credentials", name="shop-sync")
    service = api_client.account
    login(client, root_user.email, PASSWORD)
    response = client.post(
        f"/users/{service.pk}/",
        {
            "email": "someone@shop.example",
            "first_name": service.first_name,
            "last_name": service.last_name,
            "status": "active",
        },
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "managed by the API client shop-sync" in html
    assert not EmailChange.objects.filter(user=service).exists()


def test_apiclient_list_names_who_holds_each_secret(capsys, root_user):
    """The operator's view of the caps: the last column of `apiclient list`."""
    by_cli, _ = make_client("client_credentials", name="by-cli")
    boss = UserFactory(email="boss@shop.example", groups=["root"])
    make_client("client_credentials", name="by-boss", by=Actor(user=boss))
    call_command("apiclient", "list")
    rows = {line.split("\t")[1]: line.split("\t") for line in capsys.readouterr().out.splitlines()}
    assert rows["by-cli"][-1] == "operator"
    assert rows["by-boss"][-1] == "boss@shop.example"
    account_services.user_set_status(user=boss, active=False, by=Actor(user=root_user))
    call_command("apiclient", "list")
    rows = {line.split("\t")[1]: line.split("\t") for line in capsys.readouterr().out.splitlines()}
    assert rows["by-boss"][-1] == "none"


def test_a_service_accounts_page_offers_no_mailed_link(client, root_user):
    """Its edit page says whose its address is and offers no password reset
    mail (a service account never logs in)."""
    api_client, _secret = make_client("client_credentials", name="shop-sync")
    login(client, root_user.email, PASSWORD)
    html = client.get(f"/users/{api_client.account.pk}/").content.decode()
    assert "managed by the API client shop-sync" in html
    assert "A new address takes effect when the link" not in html
    assert "Send password reset email" not in html
