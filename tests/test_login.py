"""Password login through /login/, as a browser would post it."""

import pytest
from django.contrib.auth.hashers import make_password
from django.contrib.sessions.models import Session

from accounts.models import AuditEvent, User
from tests.conftest import login
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

GENERIC = "The email address and/or password you specified are not correct."


def test_login_page_has_form_and_forgot_link(client):
    response = client.get("/login/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="login"' in html and 'name="password"' in html
    assert "Forgot password?" in html and 'href="/password/reset/"' in html


def test_active_user_logs_in_and_sees_dashboard(client, user):
    response = login(client, "ada@shop.example", PASSWORD)
    assert response.status_code == 302 and response["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200
    assert "Ada Lovelace" in page.content.decode()
    event = AuditEvent.objects.get(action="login.succeeded")
    assert event.actor == user and event.outcome == "success" and event.ip == "127.0.0.1"


def test_email_is_case_insensitive_and_trimmed(client, user):
    response = login(client, "  ADA@Shop.Example ", PASSWORD)
    assert response.status_code == 302


@pytest.mark.parametrize(
    "email,password",
    [
        ("ada@shop.example", "wrong password 123"),
        ("nobody@shop.example", PASSWORD),
        ("blocked@shop.example", PASSWORD),
    ],
    ids=["wrong-password", "unknown-email", "blocked-account"],
)
def test_failures_share_one_generic_message(client, user, email, password):
    UserFactory(email="blocked@shop.example", status=User.Status.BLOCKED)
    response = login(client, email, password)
    assert response.status_code == 200
    assert GENERIC in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get("/").status_code == 302
    event = AuditEvent.objects.get(action="login.failed")
    assert event.outcome == "failure" and event.target_label == email


def test_blocked_account_never_reaches_the_inactive_page(client):
    UserFactory(email="blocked@shop.example", status=User.Status.BLOCKED)
    response = login(client, "blocked@shop.example", PASSWORD)
    assert response.status_code == 200
    assert "inactive" not in response.content.decode().lower()


@pytest.mark.parametrize(
    "data",
    [{}, {"login": "", "password": ""}, {"login": "not-an-email", "password": "x"}],
)
def test_malformed_posts_get_form_errors(client, data):
    response = client.post("/login/", data)
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_session_id_rotates_at_login(client, user):
    client.get("/login/")
    client.session.save()
    before = client.session.session_key
    login(client, "ada@shop.example", PASSWORD)
    assert client.session.session_key != before
    assert not Session.objects.filter(session_key=before).exists()


def test_logout_is_a_post_that_deletes_the_server_session(client, user):
    login(client, "ada@shop.example", PASSWORD)
    key = client.session.session_key
    assert client.get("/logout/").status_code == 200  # a confirmation page only
    assert client.get("/").status_code == 200  # still logged in
    response = client.post("/logout/")
    assert response.status_code == 302
    assert not Session.objects.filter(session_key=key).exists()
    assert client.get("/").status_code == 302
    assert AuditEvent.objects.filter(action="logout", actor=user).count() == 1


def test_logout_without_csrf_token_is_refused(user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    login_page = client.get("/login/")
    token = login_page.cookies["csrftoken"].value
    client.post(
        "/login/", {"login": "ada@shop.example", "password": PASSWORD, "csrfmiddlewaretoken": token}
    )
    assert client.post("/logout/").status_code == 403
    assert client.get("/").status_code == 200


@pytest.mark.parametrize(
    "next_url,expected",
    [
        ("/users/", "/users/"),
        ("https://evil.example/steal", "/"),
        ("//evil.example/steal", "/"),
        ("http://localhost/", "/"),
    ],
)
def test_next_stays_on_our_host(client, root_user, next_url, expected):
    response = client.post(
        "/login/", {"login": root_user.email, "password": PASSWORD, "next": next_url}
    )
    assert response.status_code == 302
    assert response["Location"] == expected


def test_anonymous_dashboard_redirects_to_login_with_next(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"


def test_argon2id_at_owasp_parameters(user):
    user.set_password("another long passphrase")
    assert user.password.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")


def test_old_hash_is_upgraded_at_login(client):
    legacy = UserFactory(
        email="legacy@shop.example",
        password=make_password(PASSWORD, hasher="pbkdf2_sha256"),
    )
    assert legacy.password.startswith("pbkdf2_sha256$")
    assert login(client, "legacy@shop.example", PASSWORD).status_code == 302
    legacy.refresh_from_db()
    assert legacy.password.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")


class TestThrottling:
    def test_per_account_across_ips(self, client, user):
        for i in range(5):
            response = login(client, user.email, "wrong password 123", REMOTE_ADDR=f"10.0.0.{i}")
            assert response.status_code == 200
        # Even the right password, from a fresh IP, is refused while throttled.
        response = login(client, user.email, PASSWORD, REMOTE_ADDR="10.0.1.1")
        assert response.status_code == 429
        assert "Too many failed login attempts" in response.content.decode()
        assert "_auth_user_id" not in client.session
        event = AuditEvent.objects.get(action="login.throttled")
        assert event.ip == "10.0.1.1" and event.target_label == user.email
        # Another account is not affected.
        other = UserFactory(email="other@shop.example")
        assert login(client, other.email, PASSWORD, REMOTE_ADDR="10.0.1.1").status_code == 302

    def test_per_account_whatever_the_host_name(self, client, user):
        hosts = ["localhost", "127.0.0.1", "LOCALHOST"]
        for i in range(5):
            login(
                client,
                user.email,
                "wrong password 123",
                HTTP_HOST=hosts[i % 3],
                REMOTE_ADDR=f"10.0.2.{i}",
            )
        response = login(
            client, user.email.upper(), PASSWORD, HTTP_HOST="127.0.0.1", REMOTE_ADDR="10.0.2.99"
        )
        assert response.status_code == 429

    def test_per_ip_across_accounts(self, client, user):
        for i in range(10):
            response = login(client, f"guess{i}@shop.example", "x" * 12, REMOTE_ADDR="10.9.9.9")
            assert response.status_code == 200
        response = login(client, user.email, PASSWORD, REMOTE_ADDR="10.9.9.9")
        assert response.status_code == 429
        assert login(client, user.email, PASSWORD, REMOTE_ADDR="10.9.9.10").status_code == 302

    def test_is_logged(self, client, user, caplog):
        for _ in range(6):
            login(client, user.email, "wrong password 123")
        assert any("login throttled" in r.getMessage() for r in caplog.records)
        assert all("wrong password" not in r.getMessage() for r in caplog.records)
