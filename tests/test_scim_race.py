"""Concurrent provisioning over real HTTP: an identity provider retrying,
or several of its workers, must get one account per person and clean
answers, never a 500 or a half-written link. On PostgreSQL through the live
server's threads; on SQLite (as `make run` serves it) through a real
production server process with threads, on a database file."""

import os
import threading

import pytest
import requests
from django.db import connection

from accounts.models import User
from scim.models import Account
from tests.servers import granian, manage, migrated_sqlite
from tests.support.scim import entra_user, make_token

SCIM_TYPE = "application/scim+json"


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


def _post(base, token, body):
    headers = {"Authorization": f"Bearer {token}", "Content-Type": SCIM_TYPE}
    return lambda: requests.post(f"{base}/scim/v2/Users", json=body, headers=headers, timeout=60)


def _check_one_created(responses):
    statuses = sorted(getattr(r, "status_code", r) for r in responses)
    texts = [getattr(r, "text", r) for r in responses]
    assert statuses == [201] + [409] * (len(responses) - 1), texts
    assert all(r.json()["scimType"] == "uniqueness" for r in responses if r.status_code == 409)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the live server's in-memory SQLite locks tables; SQLite is raced below",
)
def test_postgresql_the_same_user_posted_at_once_is_created_once(live_server, seed_groups):
    token = make_token()
    body = entra_user("race@shop.example", external_id="e-race")
    _check_one_created(_together([_post(live_server.url, token, body)] * 6))
    assert User.objects.filter(email="race@shop.example").count() == 1
    assert Account.objects.filter(external_id="e-race").count() == 1
    others = [
        _post(live_server.url, token, entra_user(f"m{n}@shop.example", external_id=f"e{n}"))
        for n in range(8)
    ]
    assert [r.status_code for r in _together(others)] == [201] * 8


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory):
    db = tmp_path_factory.mktemp("sqlite") / "iam.sqlite3"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CACHE_URL")}
    env.update(
        DATABASE_URL=migrated_sqlite(db),
        DJANGO_SETTINGS_MODULE="iam.settings",
        DJANGO_SECRET_KEY="scim-sqlite-" + "s" * 40,
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_DEBUG="true",
        DJANGO_STATICFILES_STORAGE="django.contrib.staticfiles.storage.StaticFilesStorage",
        DJANGO_LOG_LEVEL="WARNING",
    )
    token = manage(env, "scimtoken", "create", "--name", "entra").stdout.strip().splitlines()[-1]
    with granian(env) as (base,):
        yield base, token


def test_sqlite_the_same_user_posted_at_once_is_created_once(sqlite_server):
    base, token = sqlite_server
    body = entra_user("race@shop.example", external_id="e-race")
    _check_one_created(_together([_post(base, token, body)] * 6))
    others = [_post(base, token, entra_user(f"m{n}@shop.example", f"e{n}")) for n in range(8)]
    assert [getattr(r, "status_code", r) for r in _together(others)] == [201] * 8
    headers = {"Authorization": f"Bearer {token}"}
    listed = requests.get(f"{base}/scim/v2/Users", headers=headers, timeout=30).json()
    assert listed["totalResults"] == 9
