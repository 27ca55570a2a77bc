"""A dependency that is down gives a clear 503 page, not a 500 or a traceback.
(The stop/start runs against real PostgreSQL and Redis are in
benchmarks/faults.py; here the cache is a real closed port.)"""

import logging

from django.test import override_settings

from tests.conftest import PASSWORD, login

CLOSED_REDIS = {
    "default": {
        "BACKEND": "iam.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:9/0",
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
}


def test_cache_down_is_a_503_page_or_no_matter(client, root_user, caplog, settings):
    """With sessions read through the cache (cached_db, production), a page
    with the cache down is a clear 503 with Retry-After and one log line;
    with sessions in the database only, a page needs no cache at all (the
    access stamp comes with the user, the compiled rules from the process)."""
    login(client, root_user.email, PASSWORD)
    client.raise_request_exception = False
    with override_settings(CACHES=CLOSED_REDIS), caplog.at_level(logging.WARNING):
        response = client.get("/users/")
    if not settings.SESSION_ENGINE.endswith("cached_db"):
        assert response.status_code == 200
        assert "root@shop.example" in response.content.decode()
        return
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    page = response.content.decode()
    assert "Temporarily unavailable" in page and "cannot reach its cache" in page
    assert "Traceback" not in page
    outage = [r for r in caplog.records if r.name == "iam.outage"]
    assert len(outage) == 1 and "cache unavailable: GET /users/" in outage[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)


def test_cache_down_is_a_503_page_with_retry_after_where_it_is_needed(client, root_user, caplog):
    """A login needs the cache (its throttles): a clear 503, one log line."""
    client.raise_request_exception = False
    with override_settings(CACHES=CLOSED_REDIS), caplog.at_level(logging.WARNING):
        response = login(client, root_user.email, PASSWORD)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    page = response.content.decode()
    assert "Temporarily unavailable" in page and "cannot reach its cache" in page
    assert "Traceback" not in page
    outage = [r for r in caplog.records if r.name == "iam.outage"]
    assert len(outage) == 1 and "cache unavailable: POST /login/" in outage[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)


def test_login_with_the_cache_down_is_a_503_and_logs_no_one_in(client, root_user):
    """The throttles live in the cache: without it no attempt can be counted,
    so none is let through."""
    client.raise_request_exception = False
    with override_settings(CACHES=CLOSED_REDIS):
        response = login(client, root_user.email, PASSWORD)
    assert response.status_code == 503
    assert "_auth_user_id" not in client.session
    assert login(client, root_user.email, PASSWORD).status_code == 302
