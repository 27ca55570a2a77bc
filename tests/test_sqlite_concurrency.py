"""The embedded default (SQLite, as `make run` serves it) under concurrent
writes: several first SSO logins of one new person, and many password logins,
at the same moment, against a real server process with 4 threads. Nothing may
answer 500 ("database is locked"): SQLite transactions begin IMMEDIATE and
wait for the lock (settings), readers go on in WAL mode."""

import os
import threading

import pytest
import requests

from tests.servers import create_user, granian, manage, migrated_sqlite

PASSWORD = "concurrent passphrase 1"
LOGINS = 8


@pytest.fixture(scope="module")
def server(tmp_path_factory, idp):
    db = tmp_path_factory.mktemp("sqlite") / "iam.sqlite3"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CACHE_URL")}
    env.update(
        DATABASE_URL=migrated_sqlite(db),
        DJANGO_SETTINGS_MODULE="iam.settings",
        DJANGO_SECRET_KEY="sqlite-concurrency-" + "s" * 40,
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_DEBUG="true",  # as `make run` serves it (cookies not Secure on http)
        IAM_MFA_REQUIRED_GROUPS="",
        IAM_RATE_LOGIN="1000/m/ip",
        IAM_RATE_LOGIN_FAILED="1000/m/ip,1000/m/key",
        IAM_SSO_PROVIDERS="fake",
        IAM_SSO_FAKE_KIND="oidc",
        IAM_SSO_FAKE_ISSUER=idp.issuer,
        IAM_SSO_FAKE_CLIENT_ID="backoffice",
        IAM_SSO_FAKE_CLIENT_SECRET="s3cret-for-tests",
        IAM_SSO_FAKE_STRATEGY="auto-provision",
        DJANGO_STATICFILES_STORAGE="django.contrib.staticfiles.storage.StaticFilesStorage",
        DJANGO_LOG_LEVEL="WARNING",
    )
    for i in range(LOGINS):
        create_user(env, f"user{i}@shop.example", "backoffice-users", PASSWORD)
    with granian(env) as (base,):
        yield base, env


def _together(calls):
    """Run the calls at the same moment (one thread each); their results."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        try:
            results[i] = call()
        except requests.RequestException as exc:  # a dropped request is a failure too
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def _browser(base):
    session = requests.Session()
    session.get(base + "/login/", timeout=30)
    return session


def _post(session, url, data):
    token = session.cookies.get("csrftoken")
    headers = {"Referer": url}
    return session.post(
        url, data={**data, "csrfmiddlewaretoken": token}, headers=headers, allow_redirects=False
    )


def test_concurrent_password_logins(server):
    base, _ = server
    browsers = [_browser(base) for _ in range(LOGINS)]
    calls = [
        (
            lambda b=b, i=i: _post(
                b, base + "/login/", {"login": f"user{i}@shop.example", "password": PASSWORD}
            )
        )
        for i, b in enumerate(browsers)
    ]
    statuses = [getattr(r, "status_code", r) for r in _together(calls)]
    assert statuses == [302] * LOGINS
    assert all(
        b.get(base + "/", allow_redirects=False, timeout=30).status_code == 200 for b in browsers
    )


def test_four_first_sso_logins_of_one_new_person_at_once(server, idp):
    base, env = server
    claims = {
        "sub": "erin-1",
        "email": "erin@shop.example",
        "email_verified": True,
        "given_name": "Erin",
        "family_name": "Evans",
    }
    callbacks = []
    browsers = []
    for _ in range(4):
        browser = _browser(base)
        start = _post(browser, base + "/sso/fake/login/", {})
        assert start.status_code == 302
        callbacks.append(idp.authorize(start.headers["Location"], claims))
        browsers.append(browser)
    calls = [
        (lambda b=b, c=c: b.get(base + c, allow_redirects=False, timeout=60))
        for b, c in zip(browsers, callbacks, strict=True)
    ]
    responses = _together(calls)
    statuses = [getattr(r, "status_code", r) for r in responses]
    assert all(s in (302,) for s in statuses), statuses
    # Every one of them ends logged in as the one account made for Erin.
    for browser in browsers:
        page = browser.get(base + "/", allow_redirects=False, timeout=30)
        assert page.status_code == 200 and "erin@shop.example" in page.text
    shell = (
        "from accounts.models import User; from sso.models import Identity; "
        "print(User.objects.filter(email='erin@shop.example').count(), Identity.objects.count())"
    )
    assert manage(env, "shell", "-v0", "-c", shell).stdout.split() == ["1", "1"]
