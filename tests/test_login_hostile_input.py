"""Login, reset and screens under hostile input: no
oracles, no 500s, no cached private pages, waits that say how long."""

import pytest
from django.core import mail
from django.test import Client

from accounts.models import AuditEvent, User
from tests.conftest import login
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def _statuses(email, passwords, ip):
    return [login(Client(), email, p, REMOTE_ADDR=ip).status_code for p in passwords]


def test_a_blocked_accounts_right_password_counts_like_a_wrong_one():
    UserFactory(email="blocked@shop.example", status=User.Status.BLOCKED)
    UserFactory(email="other@shop.example", status=User.Status.BLOCKED)
    wrong = "not the password 1"
    with_right = _statuses(
        "blocked@shop.example", [wrong] * 4 + [PASSWORD, wrong, wrong], "10.0.0.1"
    )
    all_wrong = _statuses("other@shop.example", [wrong] * 7, "10.0.0.2")
    assert with_right == all_wrong == [200] * 5 + [429, 429]


class TestNo500:
    @pytest.mark.parametrize(
        "query,problem",
        [
            ("?until=9999-12-31", "To: Enter a day between 2000-01-01 and 9998-12-31."),
            ("?since=0001-01-01", "From: Enter a day between"),
            ("?since=2026-02-01&until=2026-01-01", "To: The end day is before the start day."),
            ("?since=yesterday", "From: Enter a valid date."),
        ],
    )
    def test_bad_audit_dates_are_named_by_their_label(self, admin, query, problem):
        response = admin.get("/audit/" + query)
        assert response.status_code == 200
        assert problem in response.content.decode()
        export = admin.get("/audit/export.csv" + query)
        assert export.status_code == 400
        assert problem in export.content.decode()
        assert not export["Content-Type"].startswith("text/csv")

    def test_a_nul_in_the_user_agent_is_no_500(self, root_user):
        """PostgreSQL refuses NUL in text; an audited login must not fail on
        a header that carries one (nginx would refuse it, the app need not
        rely on that)."""
        browser = Client(HTTP_USER_AGENT="probe\x00/1")
        response = browser.post("/login/", {"login": root_user.email, "password": "wrong"})
        assert response.status_code == 200
        event = AuditEvent.objects.get(action="login.failed")
        assert event.user_agent == "probe/1"

    def test_allauths_session_list_leads_to_ours(self, admin):
        response = admin.get("/sessions/")
        assert response.status_code == 302 and response["Location"] == "/account/sessions/"
        assert admin.get("/account/sessions/").status_code == 200


class TestHeaders:
    @pytest.mark.parametrize("path", ["/", "/users/", "/account/", "/audit/", "/audit/export.csv"])
    def test_private_pages_and_exports_are_never_stored(self, client, root_user, path):
        login(client, root_user.email, PASSWORD)
        response = client.get(path)
        assert response.status_code == 200
        assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]

    def test_throttled_login_says_how_long_to_wait(self, client, user):
        for _ in range(5):
            login(client, user.email, "wrong password 123")
        response = login(client, user.email, PASSWORD)
        assert response.status_code == 429
        assert response["Retry-After"] == "300"  # the per-account window, 5 minutes
        assert "Try again in 5 minutes." in response.content.decode()

    def test_too_many_attempts_from_one_address_say_how_long(self, client, settings):
        settings.IAM_LOGIN_THROTTLES = {**settings.IAM_LOGIN_THROTTLES, "login": "2/m/ip"}
        for _ in range(2):
            login(client, "someone@shop.example", "whatever 12345")
        response = login(client, "someone@shop.example", "whatever 12345")
        assert response.status_code == 429 and response["Retry-After"] == "60"
        assert "Wait a minute and try again." in response.content.decode()

    def test_allauths_own_limits_say_it_too(self, client):
        statuses = [
            client.post("/password/reset/", {"email": "ada@shop.example"}) for _ in range(6)
        ]
        refused = statuses[-1]
        assert refused.status_code == 429 and refused["Retry-After"].isdigit()
        assert "and try again" in refused.content.decode()


class TestLookAlikes:
    def test_a_kelvin_sign_address_gets_no_reset_of_kate(self, client):
        UserFactory(email="kate@shop.example")
        assert client.post("/password/reset/", {"email": "\u212aate@shop.example"}).status_code in (
            200,
            302,
        )
        assert mail.outbox == []

    def test_a_kelvin_sign_address_does_not_log_in_as_kate(self, client):
        UserFactory(email="kate@shop.example")
        assert login(client, "\u212aate@shop.example", PASSWORD).status_code == 200
        assert client.get("/").status_code == 302

    @pytest.mark.parametrize(
        "field,value,message",
        [
            ("last_name", "\u202eecalevol", "Last name must not contain control or formatting"),
            ("first_name", "Ada\u200bx", "First name must not contain control or formatting"),
            ("email", "\u212aate@shop.example", "could be mistaken for others"),
            ("email", "ada@\uff53hop.example", "could be mistaken for others"),
        ],
    )
    def test_the_forms_refuse_them_too(self, client, root_user, field, value, message):
        login(client, root_user.email, PASSWORD)
        data = {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ada@shop.example",
            "status": "active",
            "password_mode": "invite",
        }
        data[field] = value
        response = client.post("/users/add/", data)
        assert response.status_code == 200 and message in response.content.decode()
        assert not User.objects.filter(first_name="Ada").exists()


class TestLookAlikesOverSSO:
    def test_a_kelvin_sign_address_never_matches_kate(self, client, fake, settings):
        from tests.support.sso import ADA, configure, last_failure_reason, sso_login

        UserFactory(email="kate@shop.example")
        configure(settings, fake)
        kelvin = {**ADA, "sub": "k-1", "email": "\u212aate@shop.example", "email_verified": True}
        sso_login(client, fake, kelvin)
        assert client.get("/").status_code == 302
        assert last_failure_reason() == "no_account"
        configure(settings, fake, strategy="auto-provision")
        sso_login(client, fake, kelvin)
        assert client.get("/").status_code == 302
        assert last_failure_reason() == "provision_refused"
        assert list(User.objects.values_list("email", flat=True)) == ["kate@shop.example"]
