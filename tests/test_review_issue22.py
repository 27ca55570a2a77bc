"""An outsider's review of issue 22's new surfaces: each test would fail if
the hole it names were open (outage answers, request ids, metrics)."""

import logging
from io import StringIO

import pytest
from django.db import OperationalError, connection
from django.test import Client

from tests.api_support import account_token, bearer
from tests.conftest import PASSWORD, login

SECRET = "k3y-" + "Z" * 24


def _down(execute, sql, params, many, context):
    raise OperationalError("server closed the connection unexpectedly")


def _outage_lines(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "iam.outage"]


# --- outage lines: no key from the path, no forged line ------------------------------


@pytest.mark.parametrize(
    "path",
    [
        f"/password/reset/key/1-{SECRET}/",  # a password reset key
        f"/email/confirm/{SECRET}/",  # an address change's link
        f"/email/confirm/{SECRET}",  # ...its final slash lost: no route
    ],
)
def test_an_outage_line_never_carries_a_key_from_the_path(client, root_user, caplog, path):
    """Issue 22, item 2: never a reset key in a log line, even when the
    database is down as the link is opened."""
    login(client, root_user.email, PASSWORD)  # the session read meets the outage too
    client.raise_request_exception = False
    caplog.set_level(logging.WARNING)
    with connection.execute_wrapper(_down):
        response = client.get(path)
    assert response.status_code == 503
    lines = _outage_lines(caplog)
    assert len(lines) == 1, lines
    assert lines[0].startswith("database unavailable: GET ")
    assert not [r for r in caplog.records if SECRET in r.getMessage()]


def test_an_outage_line_cannot_be_forged_through_the_path(client, root_user, caplog):
    login(client, root_user.email, PASSWORD)
    client.raise_request_exception = False
    caplog.set_level(logging.WARNING)
    with connection.execute_wrapper(_down):
        response = client.get("/no/such%0A2026-01-01 INFO iam.audit forged/")
    assert response.status_code == 503
    lines = _outage_lines(caplog)
    assert len(lines) == 1 and "\n" not in lines[0] and "\r" not in lines[0], lines


def test_the_outage_line_still_names_a_plain_path(client, root_user, caplog):
    """A path without values keeps reading as the README shows it."""
    login(client, root_user.email, PASSWORD)
    client.raise_request_exception = False
    caplog.set_level(logging.WARNING)
    with connection.execute_wrapper(_down):
        client.get("/users/")
    assert _outage_lines(caplog) == ["database unavailable: GET /users/: OperationalError"]


# --- a bug is no outage --------------------------------------------------------------


def test_a_missing_table_is_a_500_with_its_traceback_not_an_outage(admin, caplog):
    """A schema that does not match the code (a migration not run) is a bug
    for the operator to see, not "database unavailable, retry in 5 s": on
    SQLite it raises OperationalError ("no such table"), as a lost
    connection does on PostgreSQL."""
    admin.raise_request_exception = False
    caplog.set_level(logging.WARNING)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE accounts_auditevent RENAME TO review22_moved")
    response = admin.get("/audit/")
    assert response.status_code == 500
    assert _outage_lines(caplog) == []
    errors = [r for r in caplog.records if r.name == "django.request" and r.exc_info]
    assert errors and errors[0].levelno == logging.ERROR


# --- guards: what was tried and held ---------------------------------------------------


def test_hostile_request_id_filters_are_a_clear_400_never_a_500(admin, root_user):
    api = Client(raise_request_exception=False)
    token = account_token(api, root_user, scopes=("read",))
    hostile = ["%00", "a" * 65, "%E2%80%AE", "=1%2B1", "x%0D%0Ay", "%F0%9F%92%A5" * 10]
    for value in hostile:
        screen = admin.get(f"/audit/?request_id={value}")
        assert screen.status_code == 200, value
        assert "Enter a request ID as a log line shows it." in screen.content.decode()
        assert admin.get(f"/audit/export.csv?request_id={value}").status_code == 400, value
        answer = api.get(f"/api/v1/audit?request_id={value}", **bearer(token))
        assert answer.status_code == 400, (value, answer.status_code)


def test_an_untrusted_peer_cannot_open_metrics_or_name_its_request(db, settings):
    settings.IAM_METRICS_TOKEN = ""
    settings.IAM_METRICS_ALLOW = ["10.0.0.0/8"]
    settings.IAM_TRUSTED_PROXIES = ["10.0.0.1"]
    outsider = Client(REMOTE_ADDR="198.51.100.7")
    response = outsider.get(
        "/metrics", HTTP_X_FORWARDED_FOR="10.9.9.9", HTTP_X_REQUEST_ID="chosen-by-me"
    )
    assert response.status_code == 403
    assert response["X-Request-ID"] != "chosen-by-me"
    # Through the real proxy, a forged hop on the left is not the client.
    proxied = Client(REMOTE_ADDR="10.0.0.1").get(
        "/metrics", HTTP_X_FORWARDED_FOR="10.9.9.9, 198.51.100.7"
    )
    assert proxied.status_code == 403


# --- the access log and traces: an address change's link is a secret too -------------


def test_the_access_log_and_spans_blank_an_address_change_link_s_token(user):
    """The link mailed to a new address confirms the change (the link is
    the proof): its token must leave the process no more than a reset key."""
    from accounts.models import EmailChange
    from accounts.tokens import EmailChangeLinks
    from iam.accesslog import RedactSecrets
    from iam.telemetry import redact_attribute

    change = EmailChange(pk=1, user=user, new_email="n@x.example", old_email=user.email)
    token = EmailChangeLinks().make(change)
    record = logging.LogRecord(
        "granian.access",
        logging.INFO,
        __file__,
        0,
        "%(path)s",
        ({"path": f"/email/confirm/{token}/", "query_string": ""},),
        None,
    )
    assert RedactSecrets().filter(record)
    assert record.getMessage() == "/email/confirm/<redacted>/"
    assert token not in redact_attribute("url.path", f"/email/confirm/{token}/")
    assert token not in redact_attribute("url.full", f"https://iam.example/email/confirm/{token}/")
    # The page that asks to confirm, without a token, reads as it is.
    assert redact_attribute("url.path", "/email/confirm/") == "/email/confirm/"


@pytest.mark.parametrize("token", ["x", "metrics", " " * 40, "s3cret-but-short"[:15]])
def test_a_guessable_metrics_token_stops_the_start(settings, token):
    """Refusals are not rate limited: a short token would be guessed."""
    from django.core.exceptions import ImproperlyConfigured

    from iam.metrics_http import MetricsMiddleware

    settings.IAM_METRICS_TOKEN = token
    with pytest.raises(ImproperlyConfigured, match="IAM_METRICS_TOKEN is shorter than 16"):
        MetricsMiddleware(lambda request: None)
    settings.IAM_METRICS_TOKEN = "a" * 16
    MetricsMiddleware(lambda request: None)


# --- trace context: a client cannot choose its trace, as it cannot choose its id ------

TRACE_PROBE = """
import json, sys
from wsgiref.util import setup_testing_defaults
import iam.wsgi
from opentelemetry import trace
for request in json.loads(sys.argv[1]):
    environ = {"PATH_INFO": "/login/", **request}
    setup_testing_defaults(environ)
    statuses = []
    body = iam.wsgi.application(environ, lambda status, headers: statuses.append(status))
    b"".join(body)
    print(statuses[0].split()[0])
trace.get_tracer_provider().force_flush()
"""


def test_a_traceparent_is_continued_only_from_a_trusted_proxy(tmp_path):
    """README "Traces": a proxy's trace goes on. A client's own traceparent
    must not file its request under a trace it chose (the trace id of its
    log lines), nor decide whether it is sampled."""
    import json
    import os
    import subprocess
    import sys

    from tests.servers import ROOT
    from tests.support.otlp import Receiver

    receiver = Receiver()
    chosen, proxied = "ab" * 16, "cd" * 16
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OTEL_") and k not in ("DATABASE_URL", "CACHE_URL")
    }
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        DJANGO_SETTINGS_MODULE="iam.settings",
        DJANGO_SECRET_KEY="review22-" + "r" * 50,
        DJANGO_ALLOWED_HOSTS="127.0.0.1,testserver",
        IAM_TRUSTED_PROXIES="10.0.0.1",
        DJANGO_DEBUG="true",
        DJANGO_STATICFILES_STORAGE="django.contrib.staticfiles.storage.StaticFilesStorage",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_TRACES_SAMPLER="parentbased_always_on",
        OTEL_BSP_SCHEDULE_DELAY="50",
    )
    requests = [
        {"REMOTE_ADDR": "198.51.100.9", "HTTP_TRACEPARENT": f"00-{chosen}-{'1' * 16}-01"},
        {"REMOTE_ADDR": "198.51.100.9", "HTTP_TRACEPARENT": f"00-{'ef' * 16}-{'1' * 16}-00"},
        {"REMOTE_ADDR": "10.0.0.1", "HTTP_TRACEPARENT": f"00-{proxied}-{'2' * 16}-01"},
    ]
    try:
        run = subprocess.run(
            [sys.executable, "-c", TRACE_PROBE, json.dumps(requests)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0 and run.stdout.split() == ["200"] * 3, run.stderr[-3000:]
        spans = receiver.wait_for(
            lambda spans: len([s for s in spans if s.name == "GET login/"]) == 3
        )
    finally:
        receiver.close()
    traces = [s.trace_id for s in spans if s.name == "GET login/"]
    assert chosen not in traces  # the client's choice is not believed...
    assert len(traces) == 3  # ...nor its "not sampled" flag: every request is traced
    assert proxied in traces  # the trusted proxy's trace goes on


# --- Django's own request lines: a link's key is not logged either ---------------------


@pytest.mark.parametrize("method", ["head", "post", "put"])
@pytest.mark.parametrize("path", [f"/email/confirm/{SECRET}/", f"/password/reset/key/1-{SECRET}/"])
def test_a_link_opened_by_a_scanner_leaves_no_key_in_the_log(db, caplog, method, path):
    """Mail scanners open links with HEAD (or worse); Django's "Method Not
    Allowed (HEAD): <path>" line must not carry the key the path holds."""
    caplog.set_level(logging.INFO)
    client = Client(raise_request_exception=False)
    getattr(client, method)(path)
    assert caplog.records
    leaked = [f"{r.name}: {r.getMessage()}" for r in caplog.records if SECRET in r.getMessage()]
    assert leaked == []


# --- IPv4-mapped addresses (a dual-stack listener or proxy) ----------------------------


def test_ipv4_clients_seen_as_mapped_addresses_are_not_one_throttle_bucket(client, user):
    """Behind a dual-stack listener every IPv4 client is ::ffff:a.b.c.d: an
    IPv6 address, counted by its /64, which is ::/64 for all of them. One
    guesser must not lock every IPv4 client out of the login."""
    for i in range(10):
        guess = login(client, f"guess{i}@shop.example", "x" * 12, REMOTE_ADDR="::ffff:198.51.100.7")
        assert guess.status_code == 200
    assert login(client, user.email, PASSWORD, REMOTE_ADDR="::ffff:198.51.100.7").status_code == 429
    other = Client()
    assert login(other, user.email, PASSWORD, REMOTE_ADDR="::ffff:203.0.113.9").status_code == 302


def test_a_mapped_address_is_the_ipv4_address_for_proxies_and_metrics(db, settings):
    settings.IAM_METRICS_TOKEN = ""
    settings.IAM_TRUSTED_PROXIES = ["10.0.0.1"]
    settings.IAM_METRICS_ALLOW = ["203.0.113.0/24"]
    # The proxy, seen through a dual-stack socket, is still the proxy...
    via_proxy = Client(REMOTE_ADDR="::ffff:10.0.0.1")
    assert via_proxy.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.5").status_code == 200
    # ...and an allowed client so seen is still allowed; others are not.
    assert Client(REMOTE_ADDR="::ffff:203.0.113.5").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="::ffff:198.51.100.7").get("/metrics").status_code == 403


# --- maintenance keeps what is still valid --------------------------------------------


def test_maintenance_keeps_a_refresh_token_whose_access_token_expired(user):
    """The everyday case: the access token ran out an hour ago, the client
    refreshes tomorrow. `maintenance --once` must not take that away."""
    from datetime import timedelta

    from django.core.management import call_command
    from django.utils import timezone
    from oauth2_provider.models import AccessToken

    from tests.api_support import TOKEN, basic, make_client

    http = Client()
    client, secret = make_client("password", scopes=("read",), name="refreshing-client")
    auth = {"HTTP_AUTHORIZATION": basic(client.client_id, secret)}
    data = {"grant_type": "password", "username": user.email, "password": PASSWORD}
    issued = http.post(TOKEN, data, **auth).json()
    assert "refresh_token" in issued, issued
    AccessToken.objects.update(expires=timezone.now() - timedelta(hours=1))
    call_command("maintenance", "--once", stdout=StringIO())
    refreshed = http.post(
        TOKEN, {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]}, **auth
    )
    assert refreshed.status_code == 200, refreshed.content
