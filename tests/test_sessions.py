"""Session lifetime: idle timeout and absolute maximum."""

import time

import pytest

from accounts.login import SESSION_LOGIN_AT, SESSION_SEEN_AT
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
    # The limit, plus one write interval of last activity (60 s at 30 minutes).
    _age_session(client, **{SESSION_SEEN_AT: 30 * 60 + 61})
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


def _pass_time(client, seconds):
    """As if `seconds` went by: every clock in the session moves back."""
    session = client.session
    for key in (SESSION_SEEN_AT, SESSION_LOGIN_AT):
        session[key] -= seconds
    session.save()


def test_a_user_clicking_every_21_seconds_keeps_a_one_minute_session(client, user, settings):
    settings.IAM_SESSION_IDLE_MINUTES = 1
    login(client, user.email, PASSWORD)
    for _ in range(12):  # four minutes of work
        _pass_time(client, 21)
        assert client.get("/").status_code == 200
    # Idle: the session ends within one write interval (6 s here) of the minute.
    _pass_time(client, 60 + 7)
    assert client.get("/").status_code == 302


def test_limits_follow_settings(client, user, settings):
    login(client, user.email, PASSWORD)
    _age_session(client, **{SESSION_SEEN_AT: 6 * 60})
    assert client.get("/").status_code == 200
    settings.IAM_SESSION_IDLE_MINUTES = 5
    from django.test import Client

    fresh = Client()
    fresh.cookies = client.cookies
    _age_session(client, **{SESSION_SEEN_AT: 6 * 60 + 31})
    assert fresh.get("/").status_code == 302


def test_session_cookie_is_a_browser_session_cookie(client, user):
    response = login(client, user.email, PASSWORD)
    cookie = response.cookies["iam_session"]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["secure"] is True
    assert cookie["max-age"] == ""  # ends with the browser too


def test_a_login_writes_its_session_once_and_the_first_page_none(client, user):
    """One INSERT at login (no key lookup, no insert-then-update), nothing on
    the first page; the old anonymous session is gone."""
    from django.contrib.sessions.models import Session
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    anonymous = client.session.session_key  # a session from before the login
    assert anonymous and Session.objects.filter(session_key=anonymous).exists()
    with CaptureQueriesContext(connection) as login_queries:
        assert login(client, user.email, PASSWORD).status_code == 302
    with CaptureQueriesContext(connection) as page_queries:
        assert client.get("/").status_code == 200
    writes = [
        q["sql"].split()[0]
        for q in login_queries
        if "django_session" in q["sql"] and not q["sql"].startswith("SELECT")
    ]
    assert writes == ["DELETE", "INSERT"]
    new_key = client.cookies["iam_session"].value
    assert new_key != anonymous
    assert not [q for q in login_queries if q["sql"].startswith("SELECT") and new_key in q["sql"]]
    assert not any("django_session" in q["sql"] and "SELECT" not in q["sql"] for q in page_queries)
    assert not Session.objects.filter(session_key=anonymous).exists()
    assert Session.objects.get(session_key=new_key).get_decoded()["_auth_user_id"] == str(user.pk)


def test_a_warm_page_is_one_cache_round_trip_and_one_query(client, user):
    """With Redis: the session and the access-rules generation come in one
    MGET; the user is the only SQL query for the session and the access
    check. (With a per-process cache sessions are read from the database:
    two queries, no Redis.) The dashboard itself asks one question of its
    own: whether "My reviews" has something waiting (reviews.selectors)."""
    from django.conf import settings
    from django.core.cache import caches
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if "redis" not in settings.CACHES["default"]["BACKEND"].lower():
        pytest.skip("needs CACHE_URL=redis://… (the CI's second pass)")
    redis = caches["default"]._cache.get_client()

    def calls():
        return sum(v["calls"] for k, v in redis.info("commandstats").items())

    login(client, user.email, PASSWORD)
    client.get("/")
    before = calls()
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/").status_code == 200
    after = calls()
    sql = [q["sql"] for q in queries]
    assert len(sql) == 2 and "accounts_user" in sql[0] and "reviews_reviewitem" in sql[1], sql
    assert after - before - 1 == 1  # minus the INFO of `before` itself


def test_a_session_evicted_from_the_cache_is_read_back_from_the_database(client, user):
    from django.core.cache import cache

    login(client, user.email, PASSWORD)
    cache.clear()  # Redis restarted or evicted the session
    assert client.get("/").status_code == 200
    assert client.get("/users/").status_code == 403  # still this user, with its rules


def test_session_store_internals_are_as_the_patch_expects():
    """The guard of iam.sessions (kept by measurement): the names of
    Django's SessionBase it replaces or sets must still mean what they did."""
    import inspect

    from django.contrib.sessions.backends.base import SessionBase
    from django.contrib.sessions.backends.db import SessionStore

    cycle = inspect.getsource(SessionBase.cycle_key)
    assert "self._session" in cycle and "self.create()" in cycle
    assert "self._session_cache = data" in cycle
    assert "_get_new_session_key" in inspect.getsource(SessionBase._get_or_create_session_key)
    assert list(inspect.signature(SessionStore.save).parameters) == ["self", "must_create"]
