"""/metrics: who may scrape it, what it counts, and that the numbers are
right with several granian worker processes (README "Metrics")."""

import json
import os
import signal
import subprocess
import time
import uuid

import psutil
import pytest
import redis
import requests
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from iam.metrics_http import MetricsMiddleware
from tests.factories import PASSWORD, UserFactory
from tests.servers import manage, migrated_sqlite, started
from tests.support import sso
from tests.support.metrics import label_values, samples, total, unbounded_labels

TOKEN = "metrics-token-" + "s" * 32
REFUSED = {"error": "forbidden"}


def _scrape(client, **headers):
    return client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **headers)


# --- access ------------------------------------------------------------------------


def _refused(response):
    assert response.status_code == 403
    assert json.loads(response.content) == REFUSED  # no detail: the same for every refusal
    assert b"iam_" not in response.content


@pytest.mark.parametrize("header", ["", "Bearer ", "Bearer anything", f"Bearer {TOKEN}"])
def test_nothing_configured_refuses_everyone(db, settings, header):
    settings.IAM_METRICS_TOKEN, settings.IAM_METRICS_ALLOW = "", []
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    _refused(Client().get("/metrics", **extra))


def test_the_token_opens_it_by_ip_host_and_a_wrong_one_does_not(db, settings):
    settings.IAM_METRICS_TOKEN = TOKEN
    client = Client()
    _refused(client.get("/metrics"))
    _refused(client.get("/metrics", HTTP_AUTHORIZATION="Bearer " + TOKEN[:-1]))
    _refused(client.get("/metrics", HTTP_AUTHORIZATION="Basic " + TOKEN))
    # Prometheus scrapes by address: an IP Host header is no DisallowedHost.
    response = _scrape(client, HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response["Cache-Control"] == "no-store"
    assert b"# TYPE iam_logins_total counter" in response.content
    assert b"iam_mail_queue_depth 0.0" in response.content
    assert b"iam_metrics_database_up 1.0" in response.content


def test_an_allowed_address_needs_no_token(db, settings):
    settings.IAM_METRICS_TOKEN = TOKEN
    settings.IAM_METRICS_ALLOW = ["192.0.2.0/24", "127.0.0.1"]
    assert Client().get("/metrics").status_code == 200
    # A wrong token is refused even from an allowed address.
    _refused(Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong"))
    settings.IAM_METRICS_ALLOW = ["192.0.2.0/24"]
    _refused(Client().get("/metrics"))
    assert Client(REMOTE_ADDR="192.0.2.77").get("/metrics").status_code == 200


def test_a_forwarded_address_counts_only_from_a_trusted_proxy(db, settings):
    settings.IAM_METRICS_ALLOW = ["203.0.113.0/24"]
    spoofed = {"HTTP_X_FORWARDED_FOR": "203.0.113.5"}
    settings.IAM_TRUSTED_PROXIES = []
    _refused(Client().get("/metrics", **spoofed))
    settings.IAM_TRUSTED_PROXIES = ["127.0.0.1"]
    assert Client().get("/metrics", **spoofed).status_code == 200
    # Through the trusted proxy, the proxy's own address is not the client's.
    settings.IAM_METRICS_ALLOW = ["127.0.0.1"]
    _refused(Client().get("/metrics", **spoofed))


def test_a_bad_allow_list_is_a_clear_startup_error(settings):
    settings.IAM_METRICS_ALLOW = ["10.0.0.0/8", "intranet"]
    with pytest.raises(ImproperlyConfigured, match="IAM_METRICS_ALLOW: 'intranet'"):
        MetricsMiddleware(lambda request: None)


# --- what it counts (one process) ------------------------------------------------------


def test_logins_routes_and_provider_calls_are_counted_with_bounded_labels(
    seed_groups, settings, fake
):
    settings.IAM_METRICS_TOKEN = TOKEN
    sso.configure(settings, fake, strategy="auto-provision")
    UserFactory(email="ada@shop.example")
    client = Client()
    before = samples(_scrape(client).content.decode())
    client.post("/login/", {"login": "ada@shop.example", "password": "wrong-" + PASSWORD})
    client.post("/login/", {"login": "ada@shop.example", "password": PASSWORD})
    client.get("/users/12345/")  # a route with an id: counted by its name, not its path
    client.get("/no/such/page/4711/")
    sso_client = Client()
    assert (
        sso.sso_login(sso_client, fake, {**sso.ADA, "email": "sso@shop.example"}).status_code == 302
    )
    after = samples(_scrape(client).content.decode())

    def delta(name, **labels):
        return total(after, name, **labels) - total(before, name, **labels)

    assert delta("iam_logins_total", method="password", outcome="success") == 1
    assert delta("iam_logins_total", method="password", reason="bad_credentials") == 1
    assert delta("iam_audit_events_total", action="login.failed", outcome="failure") == 1
    assert delta("iam_logins_total", method="sso", outcome="success") == 1
    assert delta("iam_sso_logins_total", provider="fake", outcome="success") == 1
    for kind in ("discovery", "jwks", "token"):
        assert delta("iam_idp_request_duration_seconds_count", provider="fake", kind=kind) >= 1
    assert delta("iam_http_request_duration_seconds_count", route="account_login") == 2
    assert delta("iam_http_request_duration_seconds_count", route="unmatched", status="4xx") == 1
    assert unbounded_labels(after) == []
    assert not [v for v in label_values(after) if "12345" in v or "4711" in v]


def test_a_provider_that_does_not_answer_is_an_error_of_its_kind(transactional_db, settings, fake):
    settings.IAM_METRICS_TOKEN = TOKEN
    client = Client()
    before = samples(_scrape(client).content.decode())
    settings.IAM_SSO_PROVIDERS = {"fake": fake.oidc_config(issuer="http://127.0.0.1:9/realms/none")}
    response = client.post("/sso/fake/login/")
    assert response.status_code == 302  # back to the login page, with a message
    after = samples(_scrape(client).content.decode())
    errors = total(after, "iam_idp_request_errors_total", provider="fake", kind="discovery")
    assert (
        errors - total(before, "iam_idp_request_errors_total", provider="fake", kind="discovery")
        == 1
    )
    assert total(after, "iam_sso_logins_total", provider="fake", reason="idp_unreachable") >= 1


def test_second_factors_are_counted_by_type_and_outcome(transactional_db, settings):
    from tests.support.mfa import activate_totp, totp

    settings.IAM_METRICS_TOKEN = TOKEN
    UserFactory(email="ada@shop.example")
    person = Client()
    person.post("/login/", {"login": "ada@shop.example", "password": PASSWORD})
    secret = activate_totp(person)
    before = samples(_scrape(Client()).content.decode())
    later = Client()
    later.post("/login/", {"login": "ada@shop.example", "password": PASSWORD})
    later.post("/2fa/authenticate/", {"code": "000000" if totp(secret) != "000000" else "111111"})
    assert later.post("/2fa/authenticate/", {"code": totp(secret)}).status_code == 302
    after = samples(_scrape(Client()).content.decode())

    def delta(name, **labels):
        return total(after, name, **labels) - total(before, name, **labels)

    assert delta("iam_mfa_total", type="totp", outcome="failure") == 1
    assert delta("iam_mfa_total", type="totp", outcome="success") == 1
    assert delta("iam_logins_total", method="password", outcome="success") == 1


def test_a_rolled_back_audit_event_is_not_counted_and_refusals_are(transactional_db, settings):
    from django.db import transaction

    from accounts.audit import Actor, AuditAction, audit

    settings.IAM_METRICS_TOKEN = TOKEN
    client = Client()
    before = samples(_scrape(client).content.decode())
    with pytest.raises(RuntimeError), transaction.atomic():
        audit(AuditAction.LOGIN_FAILED, success=False, details={"reason": "x" * 500})
        raise RuntimeError
    audit(AuditAction.LOGIN_FAILED, success=False, details={"reason": "made-up 10.0.0.1"})
    web = Actor(channel="web")
    audit(AuditAction.ACCESS_GRANT_REFUSED, by=web, success=False, details={"reason": "rank"})
    after = samples(_scrape(client).content.decode())
    assert (
        total(after, "iam_access_refusals_total", reason="rank", channel="web")
        - total(before, "iam_access_refusals_total", reason="rank", channel="web")
        == 1
    )
    # One counted (the committed one), and its unknown reason is "other".
    assert (
        total(after, "iam_logins_total", reason="other")
        - total(before, "iam_logins_total", reason="other")
        == 1
    )
    assert unbounded_labels(after) == []


def test_scim_clients_api_grants_and_the_gauges(seed_groups, settings):
    from tests.api_support import TOKEN as TOKEN_URL
    from tests.api_support import basic, make_client
    from tests.support.scim import Scim, entra_user, make_token

    settings.IAM_METRICS_TOKEN = TOKEN
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["mail"]}}
    client = Client()
    before = samples(_scrape(client).content.decode())
    assert total(before, "iam_mail_queue_depth") == 0
    scim = Scim(Client(), make_token(name="entra"))
    assert scim.post("Users", entra_user()).status_code == 201
    assert scim.get("Users", filter='userName eq "jo@shop.example"').status_code == 200
    assert Scim(Client(), "scim_wrong.token").get("Users").status_code == 401
    api, secret = make_client()
    assert (
        client.post(
            TOKEN_URL,
            {"grant_type": "client_credentials"},
            HTTP_AUTHORIZATION=basic(api.client_id, secret),
        ).status_code
        == 200
    )
    assert (
        client.post(
            TOKEN_URL,
            {"grant_type": "client_credentials"},
            HTTP_AUTHORIZATION=basic(api.client_id, "wrong"),
        ).status_code
        == 401
    )
    UserFactory(email="ada@shop.example")
    Client().post("/password/reset/", {"email": "ada@shop.example"})  # a mail queued
    Client().post("/login/", {"login": "ada@shop.example", "password": PASSWORD})
    after = samples(_scrape(client).content.decode())

    def delta(name, **labels):
        return total(after, name, **labels) - total(before, name, **labels)

    assert delta("iam_scim_requests_total", client="entra", method="POST", status="2xx") == 1
    assert delta("iam_scim_requests_total", client="entra", method="GET", status="2xx") == 1
    assert delta("iam_scim_requests_total", client="none", method="GET", status="4xx") == 1
    grant = "client_credentials"
    assert delta("iam_api_token_requests_total", grant=grant, outcome="success") == 1
    assert delta("iam_api_token_requests_total", grant=grant, reason="invalid_client") == 1
    assert total(after, "iam_mail_queue_depth") == 1
    assert 0 <= total(after, "iam_mail_queue_oldest_age_seconds") < 60
    assert total(after, "iam_sessions_active") == 1
    assert unbounded_labels(after) == []


# --- several worker processes ---------------------------------------------------------


def _redis_url() -> str:
    """The throttles must be shared by the workers: a Redis database of this
    run's own, emptied first. On the PostgreSQL leg the suite's CACHE_URL
    (emptied before each test anyway); on the SQLite leg, which has none,
    db 12: CI runs both legs at once, and the other's benchmark smoke runs
    empty dbs 13 and 14 (tests/test_benchmarks_smoke.py)."""
    url = os.environ.get("CACHE_URL", "")
    if not url.startswith("redis"):
        url = "redis://127.0.0.1:6379/12"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).flushdb()
    except redis.RedisError:
        pytest.skip("needs Redis on 127.0.0.1:6379 (the CI starts it)")
    return url


@pytest.fixture
def server_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CACHE_URL")}
    folder = tmp_path / "metrics"
    folder.mkdir()
    # A stale file from an earlier run: the start must clear it.
    (folder / "counter_999999.db").write_bytes(b"\0" * 64)
    env.update(
        DATABASE_URL=migrated_sqlite(tmp_path / "db.sqlite3"),
        CACHE_URL=_redis_url(),
        DJANGO_SETTINGS_MODULE="iam.settings",
        DJANGO_SECRET_KEY="test-" + "x" * 60,
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_STATICFILES_STORAGE="django.contrib.staticfiles.storage.StaticFilesStorage",
        PROMETHEUS_MULTIPROC_DIR=str(folder),
        IAM_METRICS_TOKEN=TOKEN,
        IAM_TRUSTED_PROXIES="127.0.0.1",
        DJANGO_LOG_LEVEL="WARNING",
        # Every attempt per IP allowed; the third failure of one account throttled.
        IAM_RATE_LOGIN="10000/m/ip",
        IAM_RATE_LOGIN_FAILED="10000/m/ip,2/m/key",
    )
    return env


def _login(base: str, email: str, password: str) -> int:
    """As a browser behind a TLS proxy (Secure cookies; plain HTTP on loopback)."""
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    with requests.Session() as session:
        return _login_in(session, headers, base, email, password)


def _login_in(session, headers, base, email, password) -> int:

    def call(method, url, **kwargs):
        cookies = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
        return session.request(
            method,
            url,
            headers={**headers, "Cookie": cookies, "Referer": f"https://{url.split('/')[2]}/"},
            allow_redirects=False,
            timeout=30,
            **kwargs,
        )

    assert call("GET", base + "/login/").status_code == 200
    token = session.cookies.get("csrftoken")
    data = {"login": email, "password": password, "csrfmiddlewaretoken": token}
    return call("POST", base + "/login/", data=data).status_code


def _scrape_http(base: str) -> list:
    response = requests.get(
        base + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    return samples(response.text)


def _counting_pids(folder) -> set[str]:
    """The processes that have counted something (counter_<pid>.db)."""
    return {n[8:-3] for n in os.listdir(folder) if n.startswith("counter_") and n[8:-3].isdigit()}


def _workers(server) -> list[int]:
    return [p.pid for p in psutil.Process(server.process.pid).children(recursive=True)]


def test_two_workers_count_a_scripted_set_of_logins(server_env):
    run = uuid.uuid4().hex[:8]
    good, bad = f"good-{run}@shop.example", f"bad-{run}@shop.example"
    script = (
        "from accounts.models import User\n"
        f"for email in {[good, bad]!r}: User.objects.create_user(email, password={PASSWORD!r})"
    )
    manage(server_env, "shell", "-c", script)
    folder = server_env["PROMETHEUS_MULTIPROC_DIR"]
    with started(server_env, GRANIAN_WORKERS="2") as (server,):
        assert not os.path.exists(os.path.join(folder, "counter_999999.db"))
        assert requests.get(server.base + "/metrics", timeout=10).status_code == 403
        # 3 good logins, more until both workers have counted one (which
        # worker accepts a connection is the kernel's choice), then 2 wrong
        # passwords and a third attempt that is throttled.
        good_logins = 0
        while good_logins < 3 or len(_counting_pids(folder)) < 2:
            assert _login(server.base, good, PASSWORD) == 302
            good_logins += 1
            assert good_logins < 40, "one worker took every connection"
        codes = [_login(server.base, bad, "wrong-" + PASSWORD) for _ in range(3)]
        assert codes == [200, 200, 429]

        def check(found):
            assert (
                total(found, "iam_logins_total", method="password", outcome="success")
                == good_logins
            )
            assert (
                total(found, "iam_logins_total", outcome="failure", reason="bad_credentials") == 2
            )
            assert total(found, "iam_throttled_total", rule="login_failed", channel="web") == 1
            assert total(found, "iam_audit_events_total", action="login.throttled") == 1
            assert total(
                found, "iam_http_request_duration_seconds_count", route="account_login"
            ) == 2 * (good_logins + 3)
            assert unbounded_labels(found) == []
            assert not [v for v in label_values(found) if run in v or "203.0.113" in v]

        check(_scrape_http(server.base))

        # A worker dies (or is recycled): its counts stay, its files are merged
        # into one archive per type at the next scrape.
        victim = _workers(server)[0]
        assert str(victim) in _counting_pids(folder)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            alive = _workers(server)
            if victim not in alive and len(alive) == 2:
                break
            time.sleep(0.2)
        assert victim not in alive and len(alive) == 2, alive
        server.wait_ready()
        found = _scrape_http(server.base)
        check(found)
        names = os.listdir(folder)
        assert "counter_archive.db" in names
        assert not [n for n in names if n.endswith(f"_{victim}.db")]
        check(_scrape_http(server.base))  # merged once, not again
        _stop_at_once(server)


def _stop_at_once(server) -> None:
    """granian waits its kill timeout (30 s) on a stop after a worker died."""
    server.process.terminate()
    try:
        server.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        for child in psutil.Process(server.process.pid).children(recursive=True):
            child.kill()
        server.process.kill()
        server.process.wait()
