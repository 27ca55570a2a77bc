"""Session lifetime: idle timeout and absolute maximum."""

import time

import pytest

from accounts.adapter import SESSION_LOGIN_AT, SESSION_SEEN_AT
from accounts.models import AuditEvent
from tests.conftest import login
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def _age_session(client, **seconds_ago):
    session = client.session
    now = int(time.time())
    for key, ago in seconds_ago.items():
        session[key] = now - ago
    session.save()


def test_session_ends_after_idle_minutes(client, user, settings):
    login(client, user.email, PASSWORD)
    _age_session(client, **{SESSION_SEEN_AT: 30 * 60 + 5})
    response = client.get("/users/?page=2")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=%2Fusers%2F%3Fpage%3D2"
    page = client.get(response["Location"])
    assert "Your session expired" in page.content.decode()
    assert client.get("/").status_code == 302
    assert AuditEvent.objects.get(action="session.expired").details == {"reason": "idle"}


def test_activity_keeps_session_alive_within_idle_window(client, user):
    login(client, user.email, PASSWORD)
    _age_session(client, **{SESSION_SEEN_AT: 29 * 60})
    assert client.get("/").status_code == 200
    # The request refreshed last-activity, so the window starts again.
    assert int(time.time()) - client.session[SESSION_SEEN_AT] < 5
    assert client.get("/").status_code == 200


def test_session_ends_after_max_hours_whatever_the_activity(client, user):
    login(client, user.email, PASSWORD)
    _age_session(client, **{SESSION_LOGIN_AT: 10 * 3600 + 5, SESSION_SEEN_AT: 10})
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert AuditEvent.objects.get(action="session.expired").details == {"reason": "max_age"}


def test_limits_follow_settings(client, user, settings):
    login(client, user.email, PASSWORD)
    _age_session(client, **{SESSION_SEEN_AT: 6 * 60})
    assert client.get("/").status_code == 200
    settings.IAM_SESSION_IDLE_MINUTES = 5
    from django.test import Client

    fresh = Client()
    fresh.cookies = client.cookies
    _age_session(client, **{SESSION_SEEN_AT: 6 * 60})
    assert fresh.get("/").status_code == 302


def test_session_cookie_is_a_browser_session_cookie(client, user):
    response = login(client, user.email, PASSWORD)
    cookie = response.cookies["iam_session"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["secure"] is True
    assert cookie["max-age"] == ""  # ends with the browser too
