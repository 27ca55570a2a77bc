"""Two app servers on one PostgreSQL and one Redis: nothing that must be
shared lives in one process. Runs in the PostgreSQL + Redis pass of CI."""

import os
import re
import time
from urllib.parse import urlsplit

import pytest
import requests

from tests.servers import create_user, granian, manage

PASSWORD = "two servers passphrase 1"
DATABASE_URL = os.environ.get("DATABASE_URL", "")
CACHE_URL = os.environ.get("CACHE_URL", "")
# Named after the run's own database, so two runs on one server stay apart.
SERVERS_DB = (urlsplit(DATABASE_URL).path.strip("/") or "iam") + "_two_servers"

pytestmark = pytest.mark.skipif(
    not (DATABASE_URL.startswith("postgres") and CACHE_URL.startswith("redis")),
    reason="needs DATABASE_URL=postgres://… and CACHE_URL=redis://… (the CI's second pass)",
)


def _call(client, method, url, **kwargs):
    """As a browser behind a TLS proxy: Secure cookies sent, plain HTTP on loopback."""
    headers = {
        "Cookie": "; ".join(f"{c.name}={c.value}" for c in client.cookies),
        "X-Forwarded-Proto": "https",
        "X-Forwarded-For": client.ip,
        "Referer": f"https://{urlsplit(url).netloc}/",
    }
    return client.request(method, url, headers=headers, allow_redirects=False, **kwargs)


def _client(ip):
    client = requests.Session()
    client.ip = ip
    return client


def _login(client, base, email, password):
    _call(client, "GET", base + "/login/")
    token = client.cookies.get("csrftoken")
    return _call(
        client,
        "POST",
        base + "/login/",
        data={"login": email, "password": password, "csrfmiddlewaretoken": token},
    )


def _admin_finds(base, ip, email):
    """root logs in on `base` and finds the account by search: (admin, its id)."""
    admin = _client(ip)
    assert _login(admin, base, "root@shop.example", PASSWORD).status_code == 302
    users = _call(admin, "GET", f"{base}/users/?q={email}").text
    return admin, re.search(r'href="/users/(\d+)/"', users)[1]


@pytest.fixture(scope="module")
def servers():
    import psycopg

    parts = urlsplit(DATABASE_URL)
    url = parts._replace(path=f"/{SERVERS_DB}").geturl()
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {SERVERS_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {SERVERS_DB}")
    env = dict(os.environ)
    env.update(
        DATABASE_URL=url,
        CACHE_URL=CACHE_URL,
        DJANGO_SETTINGS_MODULE="iam.settings",
        DJANGO_SECRET_KEY="two-servers-" + "s" * 50,
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SECURE_SSL_REDIRECT="false",
        IAM_TRUSTED_PROXIES="127.0.0.1",
        IAM_MFA_REQUIRED_GROUPS="",
        DJANGO_STATICFILES_STORAGE="django.contrib.staticfiles.storage.StaticFilesStorage",
        DJANGO_LOG_LEVEL="WARNING",
    )
    manage(env, "migrate", "-v0")
    for email, group in (
        ("root@shop.example", "root"),
        ("ada@shop.example", "backoffice-users"),
        ("guessed@shop.example", "backoffice-users"),
        ("grace@shop.example", "backoffice-users"),
    ):
        create_user(env, email, group, PASSWORD)
    with granian(env, count=2) as bases:
        yield bases


def test_a_session_started_on_one_works_on_the_other(servers):
    a, b = servers
    client = _client("203.0.113.10")
    assert _login(client, a, "ada@shop.example", PASSWORD).status_code == 302
    assert _call(client, "GET", b + "/").status_code == 200
    assert (
        _call(
            client,
            "POST",
            b + "/logout/",
            data={"csrfmiddlewaretoken": client.cookies.get("csrftoken")},
        ).status_code
        == 302
    )
    assert _call(client, "GET", a + "/").status_code == 302


def test_throttled_on_one_is_throttled_on_the_other(servers):
    a, b = servers
    for i in range(5):
        response = _login(_client(f"198.51.100.{i}"), a, "guessed@shop.example", "wrong pass 12")
        assert response.status_code == 200
    response = _login(_client("198.51.100.99"), b, "guessed@shop.example", PASSWORD)
    assert response.status_code == 429


def test_blocking_on_one_ends_the_session_on_both(servers):
    a, b = servers
    victim = _client("203.0.113.20")
    assert _login(victim, b, "ada@shop.example", PASSWORD).status_code == 302
    assert _call(victim, "GET", a + "/").status_code == 200
    admin, pk = _admin_finds(a, "203.0.113.21", "ada@shop.example")
    response = _call(
        admin,
        "POST",
        f"{a}/users/{pk}/block/",
        data={"csrfmiddlewaretoken": admin.cookies.get("csrftoken")},
    )
    assert response.status_code == 302
    assert _call(victim, "GET", b + "/").status_code == 302
    assert _call(victim, "GET", a + "/").status_code == 302


def test_a_group_given_on_one_opens_screens_on_the_other_at_once(servers):
    """Access rules are compiled per process, keyed by a generation read from
    Redis with each session: a change on one server holds at the next
    request on the other, both ways."""
    a, b = servers
    grace = _client("203.0.113.30")
    assert _login(grace, b, "grace@shop.example", PASSWORD).status_code == 302
    assert _call(grace, "GET", b + "/users/").status_code == 403
    admin, pk = _admin_finds(a, "203.0.113.31", "grace@shop.example")
    page = _call(admin, "GET", f"{a}/users/{pk}/").text
    groups = dict(
        (name, value)
        for value, name in re.findall(r'name="groups" value="(\d+)"[^>]*>\s*([\w-]+)', page)
    )

    def give(names):
        data = {
            "first_name": "A",
            "last_name": "B",
            "email": "grace@shop.example",
            "status": "active",
            "groups": [groups[n] for n in names],
            "csrfmiddlewaretoken": admin.cookies.get("csrftoken"),
        }
        assert _call(admin, "POST", f"{a}/users/{pk}/", data=data).status_code == 302

    give(["backoffice-users", "root"])
    assert _call(grace, "GET", b + "/users/").status_code == 200
    give(["backoffice-users"])
    assert _call(grace, "GET", b + "/users/").status_code == 403


def test_connections_postgresql_ended_are_replaced_before_the_next_page(servers):
    """A PostgreSQL restart or failover ends every server's connections; the
    next pages must work (each connection is checked before its first query
    of a request, iam.db.postgresql), not show the unavailable page once per
    stale connection."""
    import psycopg

    pages = [_client(f"203.0.113.{40 + i}") for i in range(2)]
    for client, base in zip(pages, servers, strict=True):
        assert _login(client, base, "grace@shop.example", PASSWORD).status_code == 302
        for _ in range(8):  # every worker thread opens its connection
            assert _call(client, "GET", base + "/").status_code == 200
    admin_url = urlsplit(DATABASE_URL)._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        activity = f"FROM pg_stat_activity WHERE datname = '{SERVERS_DB}'"
        ended = conn.execute(f"SELECT count(pg_terminate_backend(pid)) {activity}").fetchone()[0]  # noqa: S608
        assert ended >= 2
        for _ in range(50):
            if conn.execute(f"SELECT count(*) {activity}").fetchone()[0] == 0:  # noqa: S608
                break
            time.sleep(0.1)
    for client, base in zip(pages, servers, strict=True):
        statuses = [_call(client, "GET", base + "/").status_code for _ in range(8)]
        assert statuses == [200] * 8
