"""Traces (README "Traces"): a real server with OTEL_EXPORTER_OTLP_ENDPOINT
pointing at an OTLP/HTTP receiver (tests/support/otlp.py) sends the spans of
an SSO login: the callback's server span, the client span of the call to the
provider's token endpoint and database spans, all in one trace, none holding
the authorization code, the state, the client secret or a reset key. Without
the variable no tracing code is even imported."""

import base64
import json
import logging
import os
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
import requests

from tests.oidc_fake import CLIENT_ID, CLIENT_SECRET
from tests.servers import ROOT, manage, migrated_sqlite, started
from tests.support.otlp import Receiver

ADA = {
    "sub": "ada-traces-1",
    "email": "ada@shop.example",
    "email_verified": True,
    "given_name": "Ada",
    "family_name": "Lovelace",
}
# Of this run only: two runs at once on one server (CI and a developer) must not share it.
PG_NAME = f"iam_traces_server_{os.getpid()}"


@pytest.fixture(scope="module")
def receiver():
    server = Receiver()
    yield server
    server.close()


def _database(tmp_path_factory) -> str:
    """The database the server uses: a fresh PostgreSQL database when the
    suite runs on PostgreSQL (psycopg spans), else a SQLite file."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        return migrated_sqlite(tmp_path_factory.mktemp("traces") / "db.sqlite3")
    parts = urlsplit(url)
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {PG_NAME}")
    return parts._replace(path=f"/{PG_NAME}").geturl()


@pytest.fixture(scope="module")
def app_env(tmp_path_factory, idp):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OTEL_") and k not in ("DATABASE_URL", "CACHE_URL")
    }
    env.update(
        DATABASE_URL=_database(tmp_path_factory),
        DJANGO_SETTINGS_MODULE="iam.settings",
        DJANGO_SECRET_KEY="traces-" + "t" * 50,
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_DEBUG="true",  # cookies not Secure on plain http
        IAM_MFA_REQUIRED_GROUPS="",
        IAM_SSO_PROVIDERS="fake",
        IAM_SSO_FAKE_KIND="oidc",
        IAM_SSO_FAKE_ISSUER=idp.issuer,
        IAM_SSO_FAKE_CLIENT_ID=CLIENT_ID,
        IAM_SSO_FAKE_CLIENT_SECRET=CLIENT_SECRET,
        IAM_SSO_FAKE_STRATEGY="auto-provision",
        DJANGO_STATICFILES_STORAGE="django.contrib.staticfiles.storage.StaticFilesStorage",
    )
    if os.environ.get("CACHE_URL", "").startswith("redis"):
        env["CACHE_URL"] = os.environ["CACHE_URL"]
    if env["DATABASE_URL"].startswith("postgres"):
        manage(env, "migrate", "-v0")
    yield env
    if env["DATABASE_URL"].startswith("postgres"):
        admin = urlsplit(env["DATABASE_URL"])._replace(path="/postgres").geturl()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {PG_NAME} WITH (FORCE)")


def _traced(env: dict, receiver: Receiver) -> dict:
    return {
        **env,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_SERVICE_NAME": "iam-under-test",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }


def _sso_login(base: str, idp) -> tuple[requests.Session, dict]:
    """The browser's round trip; returns it and the callback's parameters."""
    browser = requests.Session()
    browser.get(base + "/login/", timeout=30)
    start = browser.post(
        base + "/sso/fake/login/",
        data={"csrfmiddlewaretoken": browser.cookies["csrftoken"]},
        headers={"Referer": base + "/login/"},
        allow_redirects=False,
        timeout=30,
    )
    assert start.status_code == 302, start.text[:500]
    callback = idp.authorize(start.headers["Location"], ADA)
    done = browser.get(base + callback, allow_redirects=False, timeout=30)
    assert done.status_code == 302 and done.headers["Location"] == "/", done.text[:500]
    params = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    return browser, params


def test_an_sso_login_is_traced_without_secrets(app_env, receiver, idp):
    idp.reset_behaviour()
    env = {**_traced(app_env, receiver), "IAM_LOG_FORMAT": "json"}
    with started(env, GRANIAN_WORKERS="2") as (server,):
        base = server.base
        browser, params = _sso_login(base, idp)
        browser.get(base + "/password/reset/key/1-the-reset-key-0123/", timeout=30)
        session_cookie = browser.cookies["iam_session"]

        def callback_spans(spans):
            return [
                s
                for s in spans
                if s.kind == "server" and "callback" in s.attributes.get("http.route", "")
            ]

        def complete(spans):
            found = callback_spans(spans)
            trace = {s.trace_id for s in found}
            in_trace = [s for s in spans if s.trace_id in trace]
            return (
                any("/token" in s.attributes.get("http.url", "") for s in in_trace)
                and any("db.system" in s.attributes for s in in_trace)
                and any("/reset/key/" in s.attributes.get("http.url", "") for s in spans)
            )

        spans = receiver.wait_for(complete)
        log = server.log.read_text()

    (callback,) = callback_spans(spans)
    assert callback.service == "iam-under-test"
    # The callback's query keeps its parameter names, never their values.
    assert callback.attributes["http.url"] == (
        f"{base}/sso/fake/callback/?code=<redacted>&state=<redacted>"
    )
    assert callback.attributes["http.status_code"] == 302
    in_trace = {s.span_id: s for s in spans if s.trace_id == callback.trace_id}
    (token,) = [s for s in in_trace.values() if "/token" in s.attributes.get("http.url", "")]
    assert token.kind == "client" and token.attributes["http.method"] == "POST"
    assert token.attributes["http.url"] == f"{idp.base}/realm/token"
    # A child of the callback's span (maybe through spans between).
    parent = token
    while parent.parent_id and parent.span_id != callback.span_id:
        parent = in_trace[parent.parent_id]
    assert parent is callback
    database = [s for s in in_trace.values() if "db.system" in s.attributes]
    expected = {"postgresql" if app_env["DATABASE_URL"].startswith("postgres") else "sqlite"}
    if "CACHE_URL" in app_env:
        expected.add("redis")  # the session, rate limits, provider metadata
    assert {s.attributes["db.system"] for s in database} == expected
    assert all(s.kind == "client" for s in database)
    reset = [s for s in spans if "/reset/key/" in s.attributes.get("http.url", "")]
    assert reset and all(
        s.attributes["http.url"] == f"{base}/password/reset/key/<redacted>/" for s in reset
    )

    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    secrets = [params["code"], params["state"], CLIENT_SECRET, basic, session_cookie]
    secrets.append("the-reset-key-0123")
    texts = [text for s in spans for text in s.texts()]
    for secret in secrets:
        assert not [t for t in texts if secret in t], secret
    # The callback's log lines (JSON) name its trace and their span in it.
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    tied = [line for line in lines if line.get("trace_id") == callback.trace_id]
    assert tied, log[-3000:]
    assert all(line["span_id"] in in_trace for line in tied)
    # The exporter's own calls are not traced (no feedback loop).
    assert not [s for s in spans if "/v1/traces" in s.attributes.get("http.url", "")]
    # Health probes made no trace.
    assert not [s for s in spans if "readyz" in s.attributes.get("http.url", "")]


PROBE = """
import json
import sys
import threading
from wsgiref.util import setup_testing_defaults
import iam.wsgi
for request in json.loads(sys.argv[1]):
    environ = {"PATH_INFO": "/login/", **request}
    setup_testing_defaults(environ)
    statuses = []
    body = iam.wsgi.application(environ, lambda status, headers: statuses.append(status))
    b"".join(body)
    print(statuses[0].split()[0])
# redis-py 8 imports the OpenTelemetry API at its own import (its metrics
# stay off): what must not be loaded is ours: the SDK's tracing, an exporter,
# an instrumentation, the exporter's thread.
ours = ("opentelemetry.sdk.trace", "opentelemetry.exporter", "opentelemetry.instrumentation")
loaded = any(name.startswith(ours) for name in sys.modules)
threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
print(loaded, bool(threads))
"""


def probe(env: dict, *requests: dict) -> tuple[list[str], list[str], str]:
    """Requests (WSGI environ overrides of GET /login/) served by iam.wsgi in
    a fresh process: their statuses, [tracing code loaded, threads running],
    its stderr."""
    run = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(requests)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    lines = run.stdout.split("\n")
    assert run.returncode == 0 and len(lines) == len(requests) + 2, run.stderr[-3000:]
    return lines[: len(requests)], lines[-2].split(), run.stderr


# A page, a foreign Host (still a 400: the instrumentation reads the host
# before Django would), a health probe with any Host (answered before it).
REQUESTS = ({}, {"HTTP_HOST": "evil.example"}, {"PATH_INFO": "/healthz", "HTTP_HOST": "10.1.2.3"})


def test_off_unless_an_endpoint_is_set(app_env, receiver):
    """Without OTEL_EXPORTER_OTLP_ENDPOINT (every other OTEL_* set) the app
    serves with no tracing code loaded and no exporter thread; with it, both
    are there, the answers are the same and the page's span arrives: the
    probe can tell. An unknown protocol: traces off, one clear line."""
    env = {**_traced(app_env, receiver), "OTEL_TRACES_SAMPLER": "always_on"}
    off = {k: v for k, v in env.items() if k != "OTEL_EXPORTER_OTLP_ENDPOINT"}
    before = len(receiver.spans)
    assert probe(off, *REQUESTS)[:2] == (["200", "400", "200"], ["False", "False"])
    assert probe(env, *REQUESTS)[:2] == (["200", "400", "200"], ["True", "True"])
    spans = receiver.wait_for(lambda spans: len(spans) > before)
    assert "GET login/" in [s.name for s in spans[before:]]

    wrong = {**env, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}
    statuses, flags, stderr = probe(wrong, {})
    assert (statuses, flags) == (["200"], ["False", "False"])
    assert stderr.count("traces are off: OTLP protocol 'http/json' is not supported") == 1
    assert "Traceback" not in stderr


def test_a_command_is_one_trace(app_env, receiver):
    """`manage.py sso refresh` under one span, its provider calls its children."""
    manage(_traced(app_env, receiver), "sso", "refresh")

    def refreshed(spans):
        return [s for s in spans if s.name == "manage.py sso"]

    spans = receiver.wait_for(refreshed)
    (command,) = refreshed(spans)
    calls = [s for s in spans if s.parent_id == command.span_id and s.kind == "client"]
    assert any("openid-configuration" in s.attributes.get("http.url", "") for s in calls)
    # manage.py's --settings still chooses the settings.
    shell = ("shell", "-c", "from django.conf import settings; print(settings.SETTINGS_MODULE)")
    out = manage(_traced(app_env, receiver), *shell, "--settings=tests.settings").stdout
    assert out.split()[-1] == "tests.settings"


def test_log_records_carry_the_trace_and_span_ids():
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    from iam import telemetry

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    handler.addFilter(telemetry.TraceContextFilter())
    log = logging.getLogger("iam.test-traces")
    log.addHandler(handler)
    saved = telemetry._current_span
    telemetry._current_span = trace.get_current_span
    try:
        log.warning("outside")
        with TracerProvider().get_tracer("t").start_as_current_span("work") as span:
            log.warning("inside")
    finally:
        telemetry._current_span = saved
        log.removeHandler(handler)
    outside, inside = records
    assert not hasattr(outside, "trace_id")
    assert inside.trace_id == format(span.get_span_context().trace_id, "032x")
    assert inside.span_id == format(span.get_span_context().span_id, "016x")
    assert len(inside.trace_id) == 32 and len(inside.span_id) == 16


def test_captured_headers_and_new_conventions_are_redacted(app_env, receiver):
    """An operator who captures every request header and opts in to the new
    HTTP conventions beside the old ones still exports no credential, cookie
    or query value."""
    env = {
        **_traced(app_env, receiver),
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST": ".*",
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS": "",
        "OTEL_SEMCONV_STABILITY_OPT_IN": "http/dup",
    }
    request = {
        "QUERY_STRING": "next=/users/&token=query-secret-42",
        "HTTP_AUTHORIZATION": "Bearer the-bearer-token-42",
        "HTTP_COOKIE": "iam_session=cookie-secret-42",
        "HTTP_X_PROBE": "visible-42",
    }
    before = len(receiver.spans)
    assert probe(env, request)[0] == ["200"]
    spans = receiver.wait_for(lambda spans: any(s.kind == "server" for s in spans[before:]))
    (page,) = [s for s in spans[before:] if s.kind == "server"]
    assert page.attributes["http.request.header.x_probe"] == ["visible-42"]
    assert page.attributes["http.request.header.authorization"] == ["<redacted>"]
    assert page.attributes["http.request.header.cookie"] == ["<redacted>"]
    assert page.attributes["http.request.method"] == "GET"  # the new conventions too
    assert page.attributes["http.url"] == "http://127.0.0.1/login/?next=<redacted>&token=<redacted>"
    texts = [text for s in spans[before:] for text in s.texts()]
    for leaked in ("the-bearer-token-42", "query-secret-42", "cookie-secret-42", "/users/"):
        assert not [t for t in texts if leaked in t], leaked


def test_a_mail_task_is_one_trace(app_env, receiver):
    """The mail worker: one span per task, its queries its children, its
    arguments nowhere; its idle polling makes no trace."""
    enqueue = (
        "from accounts.mail import password_reset_requested as t; t.enqueue("
        "email='nobody-traced@shop.example', base_url='http://x', host='x', ip='', user_agent='')"
    )
    manage(app_env, "shell", "-c", enqueue)
    before = len(receiver.spans)
    worker = ("db_worker", "--queue-name=mail", "--batch", "--no-startup-delay", "--no-reload")
    manage(_traced(app_env, receiver), *worker)

    def tasks(spans):
        return [s for s in spans[before:] if s.name == "task password_reset_requested"]

    spans = receiver.wait_for(tasks)
    (task,) = tasks(spans)
    assert task.kind == "consumer" and task.attributes["messaging.destination.name"] == "mail"
    queries = [s for s in spans[before:] if s.parent_id == task.span_id]
    assert queries and all("db.system" in s.attributes for s in queries)
    # Every span of the run belongs to the task's trace: the polling made none.
    assert {s.trace_id for s in spans[before:]} == {task.trace_id}
    texts = [text for s in spans[before:] for text in s.texts()]
    assert not [t for t in texts if "nobody-traced" in t]


@pytest.mark.parametrize(
    ("key", "value", "exported"),
    [
        ("http.url", "https://u:p@idp.example/token?code=abc&state=xyz#f", None),
        (
            "url.full",
            "http://h/password/reset/key/1-k3y/",
            "http://h/password/reset/key/<redacted>/",
        ),
        ("http.target", "/sso/x/callback/?code=abc", "/sso/x/callback/?code=<redacted>"),
        ("url.query", "code=abc&flag", "code=<redacted>&<redacted>"),
        ("url.query", "Zm9vYmFy-token-in-the-name", "<redacted>"),
        ("url.query", "%%%", "<redacted>"),
        ("db.statement", 'SELECT 1 WHERE "p" = ?', 'SELECT 1 WHERE "p" = ?'),
        ("http.request.header.x_api_key", ("k3y",), ["<redacted>"]),
        ("http.response.header.set_cookie", ("s=1",), ["<redacted>"]),
        ("http.status_code", 302, 302),
    ],
)
def test_what_an_attribute_may_export(key, value, exported):
    from iam.telemetry import redact_attribute

    if exported is None:
        exported = "https://idp.example/token?code=<redacted>&state=<redacted>"
    assert redact_attribute(key, value) == exported
