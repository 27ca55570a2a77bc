"""Password-login throttles (accounts.throttle), through the login page, and
their sliding window on the real cache (local memory, or Redis in the
PostgreSQL pass) with the clock moved by the test."""

import pytest
from django.core import mail
from django.test import Client, RequestFactory
from hypothesis import given, settings
from hypothesis import strategies as st

from accounts import throttle
from tests.conftest import login
from tests.factories import PASSWORD
from tests.support.resets import link_from_mail, request_reset, set_password

pytestmark = pytest.mark.django_db

WRONG = "wrong password 123"


def test_all_attempts_per_ip_are_limited_by_iam_rate_login(client, user, settings):
    settings.IAM_LOGIN_THROTTLES = {**settings.IAM_LOGIN_THROTTLES, "login": "3/m/ip"}
    for _ in range(3):
        assert login(client, "x@shop.example", "", REMOTE_ADDR="10.3.0.1").status_code == 200
    refused = login(client, user.email, PASSWORD, REMOTE_ADDR="10.3.0.1")
    assert refused.status_code == 429
    assert "_auth_user_id" not in client.session
    # Another address is not affected, and the login page itself stays open.
    assert client.get("/login/", REMOTE_ADDR="10.3.0.1").status_code == 200
    assert login(client, user.email, PASSWORD, REMOTE_ADDR="10.3.0.2").status_code == 302


def test_a_successful_login_takes_its_attempt_back(client, user):
    for i in range(4):
        assert login(Client(), user.email, WRONG, REMOTE_ADDR=f"10.4.0.{i}").status_code == 200
    # Right password twice: neither counts as a fifth or sixth failure.
    for i in range(2):
        assert login(Client(), user.email, PASSWORD, REMOTE_ADDR=f"10.4.1.{i}").status_code == 302
    assert login(Client(), user.email, WRONG, REMOTE_ADDR="10.4.2.1").status_code == 200
    assert login(Client(), user.email, PASSWORD, REMOTE_ADDR="10.4.2.2").status_code == 429


def test_a_password_reset_lifts_the_account_lock(client, user):
    for i in range(5):
        login(Client(), user.email, WRONG, REMOTE_ADDR=f"10.5.0.{i}")
    assert login(Client(), user.email, PASSWORD, REMOTE_ADDR="10.5.1.1").status_code == 429
    request_reset(client, user.email)
    set_password(client, link_from_mail(mail.outbox[0]), "a brand new passphrase 42")
    fresh = login(Client(), user.email, "a brand new passphrase 42", REMOTE_ADDR="10.5.1.2")
    assert fresh.status_code == 302


@settings(max_examples=25, deadline=None)
@given(gaps=st.lists(st.floats(min_value=0, max_value=40), min_size=1, max_size=40))
def test_sliding_window_bounds(gaps):
    """5 per minute: never more than 5 in a fixed minute window, never more
    than 10 in any 60 s (the price of two counters instead of a log), and a
    client quiet for two minutes is let in again."""
    from django.core.cache import cache

    cache.clear()
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr("django.conf.settings.IAM_LOGIN_THROTTLES", {"login": "5/m/ip"})
        _attempts(monkeypatch, gaps)


def _attempts(monkeypatch, gaps):
    request = RequestFactory().post("/login/", REMOTE_ADDR="10.6.0.1")
    now, allowed = 1_000_000.0, []
    for gap in gaps:
        now += gap
        monkeypatch.setattr(throttle.time, "time", lambda t=now: t)
        if throttle.consume(request, "login") is not None:
            allowed.append(now)
    for t in allowed:
        assert sum(1 for u in allowed if t - 60 < u <= t) <= 10
        assert sum(1 for u in allowed if u // 60 == t // 60) <= 5
    monkeypatch.setattr(throttle.time, "time", lambda: now + 120)
    assert throttle.consume(request, "login") is not None
