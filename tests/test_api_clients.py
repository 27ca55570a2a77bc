"""API clients: `manage.py apiclient` and the "API clients" screen. A
client-credentials client acts as its own service account, never a person's
(a narrow admin must not hand out a root account's tokens); changing a client
needs rank over that account; the secret is shown once and only hashed."""

import pytest
from django.core.management import CommandError, call_command
from django.test import Client as Http

from accounts.models import AuditEvent
from api.models import Approval, Client
from tests.api_support import basic, make_client
from tests.conftest import login
from tests.factories import PASSWORD, UserFactory
from tests.support.people import admin_with

pytestmark = pytest.mark.django_db


def token_status(client_id, secret) -> int:
    return Http().post(
        "/oauth/token/", {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic(client_id, secret),
    ).status_code  # fmt: skip


def browser(user) -> Http:
    http = Http()
    assert login(http, user.email, PASSWORD).status_code == 302
    return http


class TestCommand:
    def test_create_prints_the_secret_once_and_stores_a_hash(self, capsys):
        UserFactory(email="svc@shop.example")
        call_command(
            "apiclient", "create", "--name", "Shop sync", "--grant", "client_credentials",
            "--user", "SVC@shop.example", "--scope", "read write",
        )  # fmt: skip
        lines = capsys.readouterr().out.splitlines()
        assert [line.split("=")[0] for line in lines] == ["client_id", "client_secret"]
        client_id, secret = (line.split("=", 1)[1] for line in lines)
        client = Client.objects.get(client_id=client_id)
        assert client.scope == "read write" and client.account.is_service
        assert client.account.email != "svc@shop.example"
        assert secret not in client.client_secret
        assert token_status(client_id, secret) == 200
        call_command("apiclient", "list")
        listed = capsys.readouterr().out
        assert client_id in listed and "Shop sync" in listed and secret not in listed
        call_command("apiclient", "revoke", client_id)
        assert not Client.objects.exists()
        assert token_status(client_id, secret) == 401
        assert AuditEvent.objects.filter(action="api.client.deleted").exists()

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--grant", "client_credentials", "--user", "nobody@shop.example"], "No account"),
            (["--grant", "authorization_code"], "at least one redirect URI"),
            (["--grant", "authorization_code", "--redirect-uri", "http://app.example/cb"], "https"),
            (["--grant", "authorization_code", "--redirect-uri", "https://a.example/cb#x"],
             "without a fragment"),
            (["--grant", "password", "--scope", "admin"], "Unknown scope"),
            (["--grant", "password", "--user", "svc@shop.example"], "Only client-credentials"),
        ],
    )  # fmt: skip
    def test_refusals_are_one_line_and_write_nothing(self, args, message):
        UserFactory(email="svc@shop.example")
        with pytest.raises(CommandError, match=message):
            call_command("apiclient", "create", "--name", "x", *args)
        assert not Client.objects.exists()

    def test_loopback_http_redirects_are_allowed_for_native_apps(self, capsys):
        call_command("apiclient", "create", "--name", "cli", "--grant", "authorization_code",
                     "--redirect-uri", "http://127.0.0.1:8765/callback")  # fmt: skip
        assert Client.objects.get().get_allowed_schemes() == ["https", "http"]


class TestRank:
    def test_a_narrow_admin_cannot_bind_a_client_to_root(self):
        """The form has no account to bind any more: a named account is
        ignored, and the client acts as its own new, empty service account."""
        root = UserFactory(email="root@shop.example", groups=["root"])
        admin = admin_with("backoffice:api-clients:*", "backoffice:users:view", name="integrators")
        response = browser(admin).post(
            "/api-clients/add/",
            {"name": "Backdoor", "grant": "client_credentials", "account": root.email,
             "scopes": "read write"},
        )  # fmt: skip
        assert response.status_code == 200
        client = Client.objects.get()
        assert client.account != root and client.account.is_service
        assert not client.account.groups.exists()

    def test_a_new_client_shows_its_secret_once(self):
        admin = admin_with("backoffice:api-clients:*", "backoffice:users:view", name="integrators")
        http = browser(admin)
        response = http.post(
            "/api-clients/add/",
            {"name": "Reports", "grant": "client_credentials", "scopes": "read"},
        )
        html = response.content.decode()
        client = Client.objects.get()
        secret = html.split('data-testid="client-secret">')[1].split("<")[0]
        assert token_status(client.client_id, secret) == 200
        assert "no-store" in response["Cache-Control"]
        assert secret not in http.get(f"/api-clients/{client.pk}/").content.decode()
        assert "API clients" in http.get("/").content.decode()

    def test_a_client_whose_account_is_above_the_admin_is_read_only_and_its_secret_stays(self):
        root = UserFactory(email="root@shop.example", groups=["root"])
        client, secret = make_client(groups_from=root)
        admin = admin_with("backoffice:api-clients:*", "backoffice:users:view", name="integrators")
        http = browser(admin)
        assert (
            'data-testid="rank-notice"' in http.get(f"/api-clients/{client.pk}/").content.decode()
        )
        http.post(f"/api-clients/{client.pk}/secret/")
        http.post(f"/api-clients/{client.pk}/delete/")
        assert token_status(client.client_id, secret) == 200  # unchanged, still there
        assert AuditEvent.objects.filter(action="access.grant_refused", actor=admin).count() == 2

    def test_the_screen_needs_its_own_resource(self):
        viewer = admin_with("backoffice:users:view", name="viewers")
        http = browser(viewer)
        assert http.get("/api-clients/").status_code == 403
        assert "API clients" not in http.get("/").content.decode()


class TestChanges:
    def test_a_new_secret_stops_the_old_one_and_the_tokens(self):
        root = UserFactory(email="root@shop.example", groups=["root"])
        client, secret = make_client(groups_from=UserFactory())
        http = Http()
        token = http.post("/oauth/token/", {"grant_type": "client_credentials"},
                          HTTP_AUTHORIZATION=basic(client.client_id, secret)).json()  # fmt: skip
        page = browser(root).post(f"/api-clients/{client.pk}/secret/").content.decode()
        new = page.split('data-testid="client-secret">')[1].split("<")[0]
        assert token_status(client.client_id, secret) == 401
        assert token_status(client.client_id, new) == 200
        bearer = {"HTTP_AUTHORIZATION": f"Bearer {token['access_token']}"}
        assert http.get("/api/v1/me", **bearer).status_code == 401

    def test_repointing_redirect_uris_drops_approvals(self):
        root = UserFactory(email="root@shop.example", groups=["root"])
        client, _ = make_client("authorization_code", redirect_uris=["https://app.example/cb"])
        Approval.objects.create(user=root, client=client, scope="read")
        browser(root).post(
            f"/api-clients/{client.pk}/",
            {"name": client.name, "redirect_uris": "https://evil.example/cb", "scopes": "read"},
        )
        client.refresh_from_db()
        assert client.redirect_uris == "https://evil.example/cb"
        assert not Approval.objects.exists()
        assert AuditEvent.objects.get(action="api.client.updated").details["redirect_uris"]


def test_secret_hasher_is_constant_time_and_never_for_people():
    from django.contrib.auth.hashers import check_password, make_password

    from api.hashers import ClientSecretHasher

    encoded = make_password("s" * 128, hasher="client_sha256")
    assert check_password("s" * 128, encoded) and not check_password("t" * 128, encoded)
    assert not make_password("a person's password").startswith(ClientSecretHasher.algorithm)


@pytest.mark.parametrize(
    "uri", ["https://[::1/", "https://[::1/cb", "https://::1]/cb", "https://[::1]:99999/cb",
            "https://app.example:port/cb", "http://[::1/cb"],
)  # fmt: skip
def test_a_malformed_redirect_uri_is_a_form_error_on_the_screen(uri):
    admin = UserFactory(email="root@shop.example", groups=["root"])
    http = browser(admin)
    http.raise_request_exception = False
    form = {"name": "App", "grant": "authorization_code", "scopes": "read"}
    response = http.post("/api-clients/add/", {**form, "redirect_uris": uri})
    assert response.status_code == 200, response.status_code
    assert "must be absolute" in response.content.decode()
    assert not Client.objects.exists()
    client, _ = make_client("authorization_code", redirect_uris=["https://app.example/cb"])
    response = http.post(f"/api-clients/{client.pk}/", {**form, "redirect_uris": uri})
    assert response.status_code == 200 and "must be absolute" in response.content.decode()
    client.refresh_from_db()
    assert client.redirect_uris == "https://app.example/cb"
    with pytest.raises(CommandError, match="must be absolute"):
        call_command("apiclient", "create", "--name", "x", "--grant", "authorization_code",
                     "--redirect-uri", uri)  # fmt: skip


@pytest.mark.parametrize("name", ["App\r\nINFO iam.audit forged", "App\u202e", "\u2066App\u2069"])
def test_a_client_name_refuses_control_and_bidi_characters(name):
    http = browser(UserFactory(email="root@shop.example", groups=["root"]))
    response = http.post("/api-clients/add/", {"name": name, "grant": "password", "scopes": "read"})
    assert response.status_code == 200
    assert "must not contain control or formatting characters" in response.content.decode()
    assert not Client.objects.exists()


def test_a_client_made_on_the_command_line_reads_by_the_operator_in_german():
    """The list names who made a client; the operator is a word of the reader's
    language, not the stored label "operator"."""
    call_command("apiclient", "create", "--name", "Lager", "--grant", "client_credentials")
    admin = admin_with("backoffice:api-clients:view", name="integrators")
    http = Http()
    login(http, admin.email, PASSWORD)
    page = http.get("/api-clients/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert "vom Betrieb" in page, page
    assert "von operator" not in page
