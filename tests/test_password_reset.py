"""Password reset from the login page, through the real mail and link."""

from datetime import datetime, timedelta

import pytest
from allauth.account.utils import user_pk_to_url_str
from django.contrib.sessions.models import Session
from django.core import mail
from django.test import Client

from accounts.models import AuditEvent, User
from accounts.tokens import PasswordResetTokens
from tests.conftest import login
from tests.factories import PASSWORD, UserFactory
from tests.support.resets import NEW_PASSWORD, link_from_mail, request_reset, set_password

pytestmark = pytest.mark.django_db


def test_same_answer_for_known_unknown_and_blocked_addresses(client, user):
    UserFactory(email="blocked@shop.example", status=User.Status.BLOCKED)
    answers = [
        request_reset(client, email)
        for email in ("ada@shop.example", "nobody@shop.example", "blocked@shop.example")
    ]
    assert {(r.status_code, r["Location"]) for r in answers} == {(302, "/password/reset/done/")}
    assert [m.to for m in mail.outbox] == [["ada@shop.example"]]
    assert "Reset your Back Office password" in mail.outbox[0].subject
    assert AuditEvent.objects.filter(action="password.reset.requested", target_id=user.pk).exists()


def test_invalid_email_is_a_form_error(client):
    response = request_reset(client, "not an email")
    assert response.status_code == 200
    assert "Enter a valid email address." in response.content.decode()
    assert mail.outbox == []


def test_link_sets_new_password_once(client, user):
    request_reset(client, user.email)
    link = link_from_mail(mail.outbox[0])
    response = set_password(client, link)
    assert response.status_code == 302 and response["Location"] == "/password/reset/key/done/"
    assert login(Client(), user.email, NEW_PASSWORD).status_code == 302
    assert login(Client(), user.email, PASSWORD).status_code == 200
    assert AuditEvent.objects.filter(action="password.reset.completed", target_id=user.pk).exists()
    # The same link a second time is dead.
    again = Client().get(link)
    assert again.status_code == 200
    assert "invalid, already used or expired" in again.content.decode()


def _link_issued_ago(user, age: timedelta) -> str:
    generator = PasswordResetTokens()
    issued = generator._num_seconds(datetime.now() - age)
    token = generator._make_token_with_timestamp(user, issued, generator.secret)
    return f"/password/reset/key/{user_pk_to_url_str(user)}-{token}/"


def test_link_expires_after_one_hour(client, user):
    response = client.get(_link_issued_ago(user, timedelta(hours=1, seconds=30)))
    assert response.status_code == 200
    assert "invalid, already used or expired" in response.content.decode()
    # Just inside the hour it still works.
    assert client.get(_link_issued_ago(user, timedelta(minutes=59))).status_code == 302


def test_weak_new_password_is_refused_and_nothing_changes(client, user):
    request_reset(client, user.email)
    link = link_from_mail(mail.outbox[0])
    response = set_password(client, link, password="short")
    assert response.status_code == 200
    assert "at least 12 characters" in response.content.decode()
    response = client.post(
        response.request["PATH_INFO"], {"password1": NEW_PASSWORD, "password2": "different one!!"}
    )
    assert response.status_code == 200
    assert login(Client(), user.email, PASSWORD).status_code == 302


def test_reset_ends_all_other_sessions(client, user):
    laptop, phone = Client(), Client()
    login(laptop, user.email, PASSWORD)
    login(phone, user.email, PASSWORD)
    keys = [laptop.session.session_key, phone.session.session_key]
    request_reset(client, user.email)
    set_password(client, link_from_mail(mail.outbox[0]))
    assert not Session.objects.filter(session_key__in=keys).exists()
    assert laptop.get("/").status_code == 302
    assert phone.get("/").status_code == 302
    event = AuditEvent.objects.get(action="password.reset.completed")
    assert event.details == {"sessions_ended": 2}


def test_login_page_links_to_reset(client):
    assert 'href="/password/reset/"' in client.get("/login/").content.decode()
