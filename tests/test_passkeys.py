"""Passkeys and security keys (WebAuthn, through allauth's MFA), over HTTP with
a software key (tests/webauthn_soft.py): the passkey login keeps the session
contract of every login (accounts.login), blocked accounts stay out, and the
MFA policy treats a key as a second factor (accounts.mfa)."""

import json
import re

import pytest
from allauth.mfa.models import Authenticator
from django.test import Client

from accounts import login as login_flow
from accounts.models import AuditEvent, User
from tests.conftest import login
from tests.factories import PASSWORD
from tests.support.mfa import activate_totp, totp
from tests.support.passkeys import HOST, add_key
from tests.webauthn_soft import SoftPasskey, js_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def client():
    return Client(HTTP_HOST=HOST)


@pytest.fixture
def mfa_policy(settings):
    settings.IAM_MFA_REQUIRED_GROUPS = ["root"]


def passkey_login(client, key: SoftPasskey):
    options = client.get("/2fa/webauthn/login/", HTTP_ACCEPT="application/json")
    assert options.status_code == 200
    credential = key.get(options.json()["request_options"])
    return client.post("/2fa/webauthn/login/", {"credential": json.dumps(credential)})


def messages_of(client) -> str:
    return client.get("/login/").content.decode()


def session_contract(client) -> dict:
    session = client.session
    return {k: v for k, v in session.items() if k.startswith("iam_")}


def test_login_page_offers_a_passkey_under_the_csp(client):
    response = client.get("/login/")
    html = response.content.decode()
    assert "Log in with a passkey" in html
    assert 'action="/2fa/webauthn/login/"' in html
    assert '<script src="/static/mfa/js/webauthn.js"></script>' in html
    # Every script is a static file or a JSON data block (never run as a script).
    for attributes in re.findall(r"<script([^>]*)>", html):
        assert "src=" in attributes or 'type="application/json"' in attributes, attributes
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy


def test_passkey_login_keeps_the_session_contract_of_a_password_and_code_login(
    client, root_user, mfa_policy
):
    login(client, root_user.email, PASSWORD)
    secret = activate_totp(client)
    key = SoftPasskey()
    authenticator = add_key(client, key)
    assert authenticator.user == root_user and authenticator.wrap().is_passwordless
    client.post("/logout/")

    # Password and code: the reference.
    by_code = Client(HTTP_HOST=HOST)
    assert login(by_code, root_user.email, PASSWORD)["Location"] == "/2fa/authenticate/"
    assert by_code.post("/2fa/authenticate/", {"code": totp(secret, step=-1)}).status_code == 302
    reference = session_contract(by_code)

    # The passkey alone: no password, no code page, straight in.
    by_key = Client(HTTP_HOST=HOST)
    response = passkey_login(by_key, key)
    assert response.status_code == 302 and response["Location"] == "/"
    assert by_key.get("/").status_code == 200
    contract = session_contract(by_key)
    root_user.refresh_from_db()
    assert contract.keys() == reference.keys()
    assert contract[login_flow.SESSION_METHOD] == "passkey"
    assert reference[login_flow.SESSION_METHOD] == "password"
    assert contract[login_flow.SESSION_MFA_OK] == root_user.access_stamp
    assert contract[login_flow.SESSION_AUTHENTICATED]["user"] == root_user.pk
    assert contract[login_flow.SESSION_MFA_BY_IDP] is False

    events = AuditEvent.objects.filter(target_id=str(root_user.pk))
    assert events.filter(action="mfa.webauthn.added").exists()
    assert events.filter(action="mfa.passkey.login").exists()
    assert events.filter(action="login.succeeded", details__method="passkey").exists()


def test_a_passkey_alone_meets_the_policy_from_the_start(client, root_user, mfa_policy):
    login(client, root_user.email, PASSWORD)
    assert client.get("/users/")["Location"] == "/2fa/totp/activate/"
    add_key(client, SoftPasskey())  # the set-up pages allow a key instead of an app
    assert client.get("/users/").status_code == 200


def test_blocked_account_is_refused_like_an_unknown_key(client, user):
    login(client, user.email, PASSWORD)
    key = SoftPasskey()
    add_key(client, key)
    client.post("/logout/")
    User.objects.filter(pk=user.pk).update(status=User.Status.BLOCKED)

    blocked = Client(HTTP_HOST=HOST)
    refused = passkey_login(blocked, key)
    unknown = Client(HTTP_HOST=HOST)
    stranger = SoftPasskey()
    stranger.user_handle = key.user_handle  # claims the account, signs with another key
    not_known = passkey_login(unknown, stranger)
    assert refused.status_code == not_known.status_code == 302
    assert refused["Location"] == not_known["Location"] == "/login/"
    # One answer for both, and not "Incorrect code" (no code was typed).
    said = "This passkey was not accepted."
    assert said in messages_of(blocked) and said in messages_of(unknown)
    assert "Incorrect code" not in messages_of(blocked)
    assert blocked.get("/")["Location"].startswith("/login/")
    assert AuditEvent.objects.filter(
        action="login.failed", target_id=str(user.pk), details__reason="blocked"
    ).exists()
    passkey_logins = AuditEvent.objects.filter(action="login.succeeded", details__method="passkey")
    assert not passkey_logins.exists()


def test_a_key_without_user_verification_cannot_log_in_alone(client, user):
    login(client, user.email, PASSWORD)
    key = SoftPasskey(user_verified=False)
    add_key(client, key, passwordless=False)  # a security key: a second factor only
    client.post("/logout/")
    fresh = Client(HTTP_HOST=HOST)
    assert passkey_login(fresh, key)["Location"] == "/login/"
    assert fresh.get("/")["Location"].startswith("/login/")


@pytest.mark.parametrize("browser_says_resident", [True, False])
def test_a_key_registered_as_a_second_factor_cannot_log_in_alone(
    client, root_user, mfa_policy, browser_says_resident
):
    """Even with user verification (a PIN, a fingerprint) and whatever the
    browser reports about a discoverable credential: only a key registered
    as passwordless logs in on its own."""
    login(client, root_user.email, PASSWORD)
    key = SoftPasskey()  # verifies its user
    page = client.get("/2fa/webauthn/add/")
    credential = key.create(
        js_data(page.content.decode())["creation_options"], resident=browser_says_resident
    )
    client.post("/2fa/webauthn/add/", {"name": "YubiKey", "credential": json.dumps(credential)})
    authenticator = Authenticator.objects.get(type="webauthn")
    assert authenticator.wrap().is_passwordless is False  # allauth's flag
    client.post("/logout/")

    fresh = Client(HTTP_HOST=HOST)
    response = passkey_login(fresh, key)
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert "registered as a second factor" in messages_of(fresh)
    assert fresh.get("/")["Location"].startswith("/login/")
    assert AuditEvent.objects.filter(
        action="login.failed", target_id=str(root_user.pk), details__reason="second_factor_key"
    ).exists()
    assert not AuditEvent.objects.filter(action="mfa.passkey.login").exists()

    # After the password it is the second factor it was registered as.
    assert login(fresh, root_user.email, PASSWORD)["Location"] == "/2fa/authenticate/"
    page = fresh.get("/2fa/authenticate/")
    credential = key.get(js_data(page.content.decode())["request_options"])
    response = fresh.post("/2fa/authenticate/", {"credential": json.dumps(credential)})
    assert response.status_code == 302 and response["Location"] == "/"


@pytest.mark.parametrize(
    "credential",
    [
        '{"id": "abc"}',
        '{"id": "\\u0000", "type": "public-key"}',
        '{"rawId": 1}',
        '{"id": "a", "rawId": "a"}',
        '"x"',
    ],
)
def test_a_malformed_credential_at_the_passkey_login_is_refused_not_a_500(client, credential):
    client.raise_request_exception = False
    client.get("/2fa/webauthn/login/", HTTP_ACCEPT="application/json")
    response = client.post("/2fa/webauthn/login/", {"credential": credential})
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert "This passkey was not accepted." in messages_of(client)
    assert AuditEvent.objects.filter(action="login.failed", details__method="passkey").exists()


def test_a_security_key_is_a_second_factor_after_the_password(client, root_user, mfa_policy):
    login(client, root_user.email, PASSWORD)
    key = SoftPasskey(user_verified=False)
    add_key(client, key, passwordless=False)
    client.post("/logout/")

    fresh = Client(HTTP_HOST=HOST)
    assert login(fresh, root_user.email, PASSWORD)["Location"] == "/2fa/authenticate/"
    page = fresh.get("/2fa/authenticate/")
    assert "Use a security key" in page.content.decode()
    credential = key.get(js_data(page.content.decode())["request_options"])
    response = fresh.post("/2fa/authenticate/", {"credential": json.dumps(credential)})
    assert response.status_code == 302 and response["Location"] == "/"
    assert fresh.get("/users/").status_code == 200
    assert fresh.session[login_flow.SESSION_METHOD] == "password"


class TestRemoval:
    def test_last_factor_of_a_required_user_is_refused(self, client, root_user, mfa_policy):
        login(client, root_user.email, PASSWORD)
        authenticator = add_key(client, SoftPasskey())
        url = f"/2fa/webauthn/keys/{authenticator.pk}/remove/"
        listing = client.get("/2fa/webauthn/").content.decode()
        assert "Laptop" in listing and url not in listing  # not offered
        page = client.get(url).content.decode()
        assert "cannot be turned off" in page and "<form" not in page.split("<main", 1)[1]
        response = client.post(url)
        assert response.status_code == 409
        assert "cannot be turned off" in response.content.decode()
        assert Authenticator.objects.filter(pk=authenticator.pk).exists()
        assert not AuditEvent.objects.filter(action="mfa.webauthn.removed").exists()

    def test_allowed_while_an_authenticator_app_remains(self, client, root_user, mfa_policy):
        login(client, root_user.email, PASSWORD)
        activate_totp(client)
        authenticator = add_key(client, SoftPasskey())
        url = f"/2fa/webauthn/keys/{authenticator.pk}/remove/"
        assert url in client.get("/2fa/webauthn/").content.decode()
        response = client.post(url)
        assert response.status_code == 302
        assert not Authenticator.objects.filter(pk=authenticator.pk).exists()
        assert AuditEvent.objects.filter(
            action="mfa.webauthn.removed", target_id=str(root_user.pk)
        ).exists()
        # Now the app is the last factor: it stays.
        client.post("/2fa/totp/deactivate/")
        assert Authenticator.objects.filter(user=root_user, type="totp").exists()
        assert client.get("/users/").status_code == 200

    def test_the_app_may_go_while_a_key_remains(self, client, root_user, mfa_policy):
        login(client, root_user.email, PASSWORD)
        activate_totp(client)
        add_key(client, SoftPasskey())
        assert "Turn off" in client.get("/account/").content.decode()
        assert client.post("/2fa/totp/deactivate/").status_code == 302
        assert not Authenticator.objects.filter(user=root_user, type="totp").exists()
        assert Authenticator.objects.filter(user=root_user, type="webauthn").count() == 1
        assert client.get("/users/").status_code == 200

    def test_users_outside_the_policy_may_remove_their_last_key(self, client, user, mfa_policy):
        login(client, user.email, PASSWORD)
        authenticator = add_key(client, SoftPasskey())
        response = client.post(f"/2fa/webauthn/keys/{authenticator.pk}/remove/")
        assert response.status_code == 302
        assert not Authenticator.objects.filter(user=user).exists()  # recovery codes too

    def test_nobody_removes_another_users_key(self, client, user, root_user):
        login(client, root_user.email, PASSWORD)
        authenticator = add_key(client, SoftPasskey())
        client.post("/logout/")
        login(client, user.email, PASSWORD)
        url = f"/2fa/webauthn/keys/{authenticator.pk}/remove/"
        assert client.get(url).status_code == 404
        assert client.post(url).status_code == 404
        assert Authenticator.objects.filter(pk=authenticator.pk).exists()

    def test_removal_needs_a_recent_authentication(self, client, user):
        from tests.conftest import age_authentication

        login(client, user.email, PASSWORD)
        authenticator = add_key(client, SoftPasskey())
        age_authentication(client.session, 11 * 60)
        response = client.post(f"/2fa/webauthn/keys/{authenticator.pk}/remove/")
        assert response.status_code == 302
        assert response["Location"].startswith("/reauthenticate/")
        assert Authenticator.objects.filter(pk=authenticator.pk).exists()


def root_like(user):
    """Another account, with a local password (the form's other case)."""
    from tests.factories import UserFactory

    return UserFactory(email=f"other-{user.pk}@shop.example")


def test_an_sso_only_account_gets_no_passkey_login(client, user):
    """Switched off at the identity provider means out: a key the account
    added itself is no way back in (as a reset link is not)."""
    from sso.models import Identity

    login(client, user.email, PASSWORD)
    key = SoftPasskey()
    add_key(client, key)  # while it still had a local password
    user.set_unusable_password()
    user.save()
    Identity.objects.create(user=user, provider="azure", issuer="https://idp", subject="s-1")
    from accounts.mfa import AddWebAuthnForm

    assert "passwordless" in AddWebAuthnForm(user=root_like(user)).fields
    assert "passwordless" not in AddWebAuthnForm(user=user).fields

    fresh = Client(HTTP_HOST=HOST)
    assert passkey_login(fresh, key)["Location"] == "/login/"
    assert "This passkey was not accepted." in messages_of(fresh)
    assert fresh.get("/")["Location"].startswith("/login/")
    assert AuditEvent.objects.filter(
        action="login.failed", target_id=str(user.pk), details__reason="sso_only"
    ).exists()


def test_every_key_page_renders_and_renaming_works(client, user):
    login(client, user.email, PASSWORD)
    authenticator = add_key(client, SoftPasskey())
    for path in (
        "/2fa/",
        "/2fa/webauthn/",
        "/2fa/webauthn/add/",
        f"/2fa/webauthn/keys/{authenticator.pk}/edit/",
        f"/2fa/webauthn/keys/{authenticator.pk}/remove/",
        "/account/",
    ):
        assert client.get(path).status_code == 200, path
    edit = f"/2fa/webauthn/keys/{authenticator.pk}/edit/"
    assert client.post(edit, {"name": "Phone"}).status_code == 302
    assert "Phone" in client.get("/2fa/webauthn/").content.decode()


@pytest.mark.parametrize(
    "credential",
    [
        "",
        "not json",
        "{}",
        "[]",
        '{"id": "AA", "rawId": "AA", "type": "public-key", "response": {"userHandle": "!!"}}',
        '{"id": "AA", "rawId": "AA", "type": "public-key", "response": {"userHandle": "OTk5"}}',
    ],
)
def test_a_bad_passkey_answer_is_a_refusal_never_an_error(client, user, credential):
    client.get("/2fa/webauthn/login/", HTTP_ACCEPT="application/json")  # a challenge is pending
    response = client.post("/2fa/webauthn/login/", {"credential": credential})
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert client.get("/").status_code == 302  # not logged in


def test_a_passkey_answer_cannot_be_replayed(client, user):
    login(client, user.email, PASSWORD)
    key = SoftPasskey()
    add_key(client, key)
    client.post("/logout/")
    options = client.get("/2fa/webauthn/login/", HTTP_ACCEPT="application/json").json()
    answer = {"credential": json.dumps(key.get(options["request_options"]))}
    assert client.post("/2fa/webauthn/login/", answer)["Location"] == "/"
    client.post("/logout/")
    thief = Client(HTTP_HOST=HOST)
    thief.get("/2fa/webauthn/login/", HTTP_ACCEPT="application/json")  # its own challenge
    assert thief.post("/2fa/webauthn/login/", answer)["Location"] == "/login/"
    assert client.post("/2fa/webauthn/login/", answer)["Location"] == "/login/"
    assert thief.get("/").status_code == client.get("/").status_code == 302
