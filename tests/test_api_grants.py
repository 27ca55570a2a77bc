"""Every grant through real HTTP with real OAuth client libraries (Authlib's
OAuth2Session, and requests-oauthlib), against pytest-django's live server:
client credentials, password (throttled like the login form, refused for MFA
accounts), refresh with rotation and replay detection, revocation,
introspection, metadata. The browser step of the code flow is in
tests/e2e/test_api_code_flow.py."""

import subprocess
import sys

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from django.core.management import call_command
from oauthlib.oauth2 import BackendApplicationClient
from requests_oauthlib import OAuth2Session as RequestsOAuthlibSession

from accounts import services as account_services
from accounts.audit import Actor
from accounts.models import AuditEvent, Group
from api.models import Client
from tests.api_support import make_client
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def base(live_server, seed_groups):
    return live_server.url


def session(client, secret, **kwargs) -> OAuth2Session:
    return OAuth2Session(client.client_id, secret, **kwargs)


def api(base, token, path="/api/v1/me"):
    return requests.get(base + path, headers={"Authorization": f"Bearer {token}"}, timeout=10)


def events(action, **filters):
    return AuditEvent.objects.filter(action=action, **filters)


def test_metadata_names_the_endpoints_grants_and_scopes(base):
    meta = requests.get(base + "/.well-known/oauth-authorization-server", timeout=10).json()
    assert meta["issuer"] == base
    for key, path in [
        ("token_endpoint", "/oauth/token/"),
        ("authorization_endpoint", "/oauth/authorize/"),
        ("revocation_endpoint", "/oauth/revoke/"),
        ("introspection_endpoint", "/oauth/introspect/"),
    ]:
        assert meta[key] == base + path
    assert set(meta["grant_types_supported"]) == {
        "authorization_code",
        "client_credentials",
        "password",
        "refresh_token",
    }
    assert {"read", "write", "introspect", "backoffice:users:view"} <= set(meta["scopes_supported"])
    assert meta["code_challenge_methods_supported"] == ["S256"]


def test_client_credentials_act_as_the_clients_service_account(base, capsys, monkeypatch):
    person = UserFactory(email="warehouse@shop.example", groups=["root"])
    call_command(
        "apiclient", "create", "--name", "Warehouse", "--grant", "client_credentials",
        "--user", person.email, "--scope", "read",
    )  # fmt: skip
    out = dict(line.split("=", 1) for line in capsys.readouterr().out.split())
    service = Client.objects.get(client_id=out["client_id"]).account
    oauth = OAuth2Session(out["client_id"], out["client_secret"], scope="read")
    token = oauth.fetch_token(base + "/oauth/token/", grant_type="client_credentials")
    assert token["expires_in"] == 30 * 60 and "refresh_token" not in token
    me = api(base, token["access_token"]).json()
    assert me["email"] == service.email and service.is_service and me["groups"] == ["root"]
    assert me["token"]["client"] == "Warehouse" and me["token"]["scope"] == "read"
    event = events("api.token.issued").get()
    assert event.details["client"] == "Warehouse" and event.target_label == service.email
    assert token["access_token"] not in str(event.details)

    # The same grant through requests-oauthlib (plain http on loopback only).
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    other = RequestsOAuthlibSession(client=BackendApplicationClient(client_id=out["client_id"]))
    again = other.fetch_token(
        base + "/oauth/token/", client_id=out["client_id"], client_secret=out["client_secret"]
    )
    assert api(base, again["access_token"]).status_code == 200


def test_client_credentials_refused_when_the_service_account_is_blocked(base):
    client, secret = make_client()
    service = client.account
    service.status = service.Status.BLOCKED
    service.save()
    with pytest.raises(OAuthError) as refused:
        session(client, secret).fetch_token(base + "/oauth/token/", grant_type="client_credentials")
    assert refused.value.error == "unauthorized_client"
    event = events("api.token.refused").get()
    assert event.details["reason"] == "account_blocked" and event.details["client"] == client.name


def test_a_wrong_secret_is_refused_and_audited_with_the_client_id(base):
    client, _ = make_client(groups_from=UserFactory())
    with pytest.raises(OAuthError) as refused:
        session(client, "not-the-secret").fetch_token(
            base + "/oauth/token/", grant_type="client_credentials"
        )
    assert refused.value.error == "invalid_client"
    event = events("api.token.refused").get()
    assert event.details["client_id"] == client.client_id
    assert "not-the-secret" not in str(event.details)


def test_password_grant_then_refresh_rotation_and_replay_kills_the_family(base):
    person = UserFactory(email="ada@shop.example", groups=["root"])
    client, secret = make_client("password", scopes=["read", "write"])
    oauth = session(client, secret)
    first = oauth.fetch_token(
        base + "/oauth/token/", username="ADA@shop.example", password=PASSWORD
    )
    assert api(base, first["access_token"]).json()["email"] == person.email
    assert events("login.succeeded", details__method="api_password").exists()

    second = oauth.refresh_token(base + "/oauth/token/", refresh_token=first["refresh_token"])
    assert second["refresh_token"] != first["refresh_token"]
    assert api(base, first["access_token"]).status_code == 401  # rotated away
    assert api(base, second["access_token"]).status_code == 200
    assert events("api.token.refreshed").count() == 1

    # Replay of the used refresh token: refused, and the whole family dies.
    with pytest.raises(OAuthError) as replayed:
        oauth.refresh_token(base + "/oauth/token/", refresh_token=first["refresh_token"])
    assert replayed.value.error == "invalid_grant"
    assert api(base, second["access_token"]).status_code == 401
    with pytest.raises(OAuthError):
        oauth.refresh_token(base + "/oauth/token/", refresh_token=second["refresh_token"])
    assert events("api.token.replayed").count() == 2  # each presentation of a dead token
    event = events("api.token.replayed").last()
    assert event.target_label == person.email and event.details["family_revoked"] is True
    assert event.details["client"] == client.name and event.outcome == "failure"


def test_password_grant_is_off_unless_the_client_is_made_for_it(base):
    UserFactory(email="ada@shop.example")
    client, secret = make_client(groups_from=UserFactory())  # a client-credentials client
    with pytest.raises(OAuthError) as refused:
        session(client, secret).fetch_token(
            base + "/oauth/token/", username="ada@shop.example", password=PASSWORD
        )
    assert refused.value.error == "unauthorized_client"


def test_password_grant_refused_for_accounts_that_have_or_need_mfa(base, settings):
    from allauth.mfa.models import Authenticator

    settings.IAM_MFA_REQUIRED_GROUPS = ["root"]
    with_factor = UserFactory(email="totp@shop.example")
    Authenticator.objects.create(user=with_factor, type=Authenticator.Type.TOTP, data={})
    with_key = UserFactory(email="key@shop.example")  # a security key or passkey only
    Authenticator.objects.create(user=with_key, type=Authenticator.Type.WEBAUTHN, data={})
    UserFactory(email="root@shop.example", groups=["root"])  # must have MFA
    client, secret = make_client("password")
    for email in ("totp@shop.example", "key@shop.example", "root@shop.example"):
        with pytest.raises(OAuthError) as refused:
            session(client, secret).fetch_token(
                base + "/oauth/token/", username=email, password=PASSWORD
            )
        assert refused.value.error == "invalid_grant"
        assert "two-factor" in refused.value.description
    assert events("api.token.refused", details__reason="mfa").count() == 3


def test_a_password_token_stops_refreshing_once_the_account_needs_mfa(base, settings):
    settings.IAM_MFA_REQUIRED_GROUPS = ["root"]
    person = UserFactory(email="ada@shop.example", groups=["backoffice-users"])
    client, secret = make_client("password")
    oauth = session(client, secret)
    token = oauth.fetch_token(base + "/oauth/token/", username=person.email, password=PASSWORD)
    account_services.user_update(
        user=person, email=person.email, first_name=person.first_name,
        last_name=person.last_name, groups=[Group.objects.get(name="root")], active=True,
        by=Actor.system(),
    )  # fmt: skip
    # The browser would now send this person to MFA set-up: the API refuses too.
    assert api(base, token["access_token"]).json()["error"] == "mfa_setup_required"
    with pytest.raises(OAuthError) as refused:
        oauth.refresh_token(base + "/oauth/token/", refresh_token=token["refresh_token"])
    assert refused.value.error == "invalid_grant"


def _login_form(email, password):
    """The login form, through Django's test client: same process, so the
    same cache (the counters) as the live server, and the same client IP."""
    from django.test import Client as Browser

    from tests.conftest import login

    return login(Browser(), email, password)


def test_password_grant_shares_the_login_forms_counters_and_lockout(base):
    UserFactory(email="ada@shop.example")
    client, secret = make_client("password")
    oauth = session(client, secret)
    for _ in range(3):
        with pytest.raises(OAuthError):
            oauth.fetch_token(base + "/oauth/token/", username="ada@shop.example", password="nope")
    for _ in range(2):  # the login form's failures count against the same account
        response = _login_form("ada@shop.example", "nope")
        assert response.status_code == 200
    # Locked: even the right password is refused, with a 429 and when to retry.
    raw = requests.post(
        base + "/oauth/token/",
        data={"grant_type": "password", "username": "ada@shop.example", "password": PASSWORD},
        auth=(client.client_id, secret),
        timeout=10,
    )
    assert raw.status_code == 429 and raw.json()["error"] == "too_many_requests"
    assert int(raw.headers["Retry-After"]) == 300
    response = _login_form("ada@shop.example", PASSWORD)
    assert response.status_code == 429  # and the login form is locked too
    assert events("login.failed", details__via="api").count() == 3
    assert events("api.token.refused", details__reason="throttled").count() == 1
    assert events("login.throttled", details__via="api").count() == 1


def test_a_right_password_takes_its_count_back_and_a_blocked_ones_does_not(base):
    UserFactory(email="ada@shop.example")
    UserFactory(email="blocked@shop.example", status="blocked")
    client, secret = make_client("password")
    oauth = session(client, secret)
    for _ in range(8):  # more than the 5 failures allowed: rights are taken back
        oauth.fetch_token(base + "/oauth/token/", username="ada@shop.example", password=PASSWORD)
    for _ in range(5):
        with pytest.raises(OAuthError) as refused:
            oauth.fetch_token(
                base + "/oauth/token/", username="blocked@shop.example", password=PASSWORD
            )
        assert refused.value.error == "invalid_grant"  # the same answer as a wrong password
    raw = requests.post(
        base + "/oauth/token/",
        data={"grant_type": "password", "username": "blocked@shop.example", "password": PASSWORD},
        auth=(client.client_id, secret),
        timeout=10,
    )
    assert raw.status_code == 429
    assert events("login.failed", details__reason="blocked").count() == 5


def test_revoking_an_access_token_revokes_its_refresh_token(base):
    UserFactory(email="ada@shop.example")
    client, secret = make_client("password")
    oauth = session(client, secret)
    token = oauth.fetch_token(
        base + "/oauth/token/", username="ada@shop.example", password=PASSWORD
    )
    response = oauth.revoke_token(
        base + "/oauth/revoke/", token=token["access_token"], token_type_hint="access_token"
    )
    assert response.status_code == 200
    assert api(base, token["access_token"]).status_code == 401
    with pytest.raises(OAuthError):
        oauth.refresh_token(base + "/oauth/token/", refresh_token=token["refresh_token"])
    event = events("api.token.revoked").get()
    assert event.details["client"] == client.name and event.target_label == "ada@shop.example"


def test_introspection_needs_a_client_with_the_introspect_scope(base):
    UserFactory(email="ada@shop.example")
    client, secret = make_client("password")
    token = session(client, secret).fetch_token(
        base + "/oauth/token/", username="ada@shop.example", password=PASSWORD
    )
    resource_server, rs_secret = make_client(scopes=["introspect"], name="Resource server")
    rs = session(resource_server, rs_secret)
    answer = rs.introspect_token(base + "/oauth/introspect/", token=token["access_token"]).json()
    assert answer["active"] is True and answer["username"] == "ada@shop.example"
    assert answer["client_id"] == client.client_id and answer["scope"] == "read"
    assert rs.introspect_token(base + "/oauth/introspect/", token="forged").json() == {
        "active": False
    }
    # A client without the scope may not read other clients' tokens.
    denied = session(client, secret).introspect_token(
        base + "/oauth/introspect/", token=token["access_token"]
    )
    assert denied.status_code == 403 and denied.json()["error"] == "insufficient_scope"
    wrong = requests.post(
        base + "/oauth/introspect/", data={"token": "x"}, auth=(resource_server.client_id, "no"),
        timeout=10,
    )  # fmt: skip
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    "change",
    ["block", "delete", "password"],
)
def test_blocking_deleting_or_a_new_password_revokes_every_token_at_once(base, change):
    UserFactory(email="root@shop.example", groups=["root"])  # someone keeps access
    person = UserFactory(email="ada@shop.example", groups=["root"])
    client, secret = make_client("password")
    oauth = session(client, secret)
    token = oauth.fetch_token(base + "/oauth/token/", username=person.email, password=PASSWORD)
    # A client whose secret this person holds (they made it).
    service_client, service_secret = make_client(name="svc", by=Actor(user=person))
    service = session(service_client, service_secret).fetch_token(
        base + "/oauth/token/", grant_type="client_credentials"
    )
    if change == "block":
        account_services.user_set_status(user=person, active=False, by=Actor.system())
    elif change == "delete":
        account_services.user_delete(user=person, by=Actor.system())
    else:
        person.set_password("a brand new passphrase 42")
        person.save()
        account_services.password_changed_by_user(
            user=person, keep_session_key=None, by=Actor(user=person)
        )
    assert api(base, token["access_token"]).status_code == 401
    # Blocked or deleted, the holder ends the tokens of the clients they hold the
    # secret of; a new password of theirs does not change the client's secret.
    held = 200 if change == "password" else 401
    assert api(base, service["access_token"]).status_code == held
    with pytest.raises(OAuthError):
        oauth.refresh_token(base + "/oauth/token/", refresh_token=token["refresh_token"])
    if change != "delete":
        event = events("api.token.revoked", target_label=person.email).get()
        assert event.details["access_tokens"] == (1 if change == "password" else 2)


def test_lifetimes_come_from_the_environment():
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='iam.settings'; django.setup();"
        "from oauth2_provider.settings import oauth2_settings as s;"
        "print(s.ACCESS_TOKEN_EXPIRE_SECONDS, s.REFRESH_TOKEN_EXPIRE_SECONDS)"
    )
    env = {"IAM_API_ACCESS_TOKEN_MINUTES": "480", "IAM_API_REFRESH_TOKEN_DAYS": "31",
           "PATH": "/usr/bin:/bin"}  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [str(480 * 60), str(31 * 86400)]


def test_only_hashes_of_secrets_and_tokens_are_stored(base):
    from oauth2_provider.models import AccessToken, RefreshToken

    UserFactory(email="ada@shop.example")
    client, secret = make_client("password")
    token = session(client, secret).fetch_token(
        base + "/oauth/token/", username="ada@shop.example", password=PASSWORD
    )
    stored = Client.objects.get(pk=client.pk).client_secret
    assert stored.startswith("client_sha256$") and secret not in stored
    assert AccessToken.objects.get().token == "" and RefreshToken.objects.get().token == ""
    assert token["access_token"] not in str(list(AuditEvent.objects.values_list("details")))
