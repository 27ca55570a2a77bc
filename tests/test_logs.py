"""Request ids and log lines (README "Logs and request ids"): every response
carries X-Request-ID, taken from a trusted proxy only; the audit events and
log lines of the request carry it; the audit screen, its CSV and the API
find events by it; JSON lines name the actor and the route; an audit line
is written only once its event is committed; a 503 is one line."""

import csv
import io
import json
import logging
import re
from contextlib import contextmanager

import pytest
from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.db import transaction
from django.test import Client, override_settings

from accounts.audit import Actor, AuditAction, audit
from accounts.models import AuditEvent
from iam.logs import JsonFormatter, TextFormatter
from tests.api_support import account_token, bearer
from tests.conftest import login
from tests.factories import PASSWORD
from tests.support.secrets import LogSecretCheck

pytestmark = pytest.mark.django_db

MADE = re.compile(r"[0-9a-f]{32}")
CLOSED_REDIS = {
    "default": {
        "BACKEND": "iam.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:9/0",
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
}


class Lines(logging.Handler):
    """Every record reaching the root logger, as production's JSON formatter
    writes it (parsed back), with the record itself."""

    def __init__(self):
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.items: list[tuple[logging.LogRecord, dict]] = []

    def emit(self, record):
        self.items.append((record, json.loads(self.format(record))))

    def of(self, logger: str) -> list[dict]:
        return [line for record, line in self.items if record.name == logger]


@contextmanager
def captured(level=logging.INFO):
    handler, root = Lines(), logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


# --- the id ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/login/", "/healthz", "/readyz", "/nowhere/", "/api/v1/me"])
def test_every_response_carries_a_made_id(client, path):
    first, second = client.get(path), client.get(path)
    assert MADE.fullmatch(first["X-Request-ID"]), first.headers
    assert first["X-Request-ID"] != second["X-Request-ID"]


def test_a_503_carries_it_too(client):
    with override_settings(CACHES=CLOSED_REDIS):
        response = client.get("/readyz")
    assert response.status_code == 503 and MADE.fullmatch(response["X-Request-ID"])


def test_an_id_from_an_untrusted_peer_is_not_believed(client):
    response = client.get("/login/", HTTP_X_REQUEST_ID="chosen-by-the-client")
    assert MADE.fullmatch(response["X-Request-ID"])


@override_settings(IAM_TRUSTED_PROXIES=["127.0.0.1"])
def test_a_trusted_proxy_s_id_is_kept():
    response = Client().get("/healthz", HTTP_X_REQUEST_ID="nginx-4f2a:7.1")
    assert response["X-Request-ID"] == "nginx-4f2a:7.1"


@override_settings(IAM_TRUSTED_PROXIES=["127.0.0.1"])
@pytest.mark.parametrize(
    "sent",
    [
        "x" * 65,
        "abc def",
        "abc\r\nINFO forged",
        "abc\x00",
        '"quoted"',
        "-leading-dash",
        "ünïcode",
        "=cmd|' /C calc'!A0",
    ],
)
def test_a_trusted_proxy_s_unsafe_id_is_replaced(sent):
    response = Client().get("/healthz", HTTP_X_REQUEST_ID=sent)
    assert MADE.fullmatch(response["X-Request-ID"])


@override_settings(IAM_TRUSTED_PROXIES=["10.0.0.1"])
def test_a_forwarded_address_does_not_make_a_client_a_proxy():
    """Judged on the connection's own address, as X-Forwarded-For is."""
    response = Client().get(
        "/healthz", HTTP_X_REQUEST_ID="spoofed", HTTP_X_FORWARDED_FOR="10.0.0.1"
    )
    assert MADE.fullmatch(response["X-Request-ID"])


# --- the id in the audit trail and in the log -------------------------------------


def test_the_audit_events_and_log_lines_of_a_request_carry_its_id(
    client, user, django_capture_on_commit_callbacks
):
    with captured() as lines, django_capture_on_commit_callbacks(execute=True):
        response = login(client, user.email, PASSWORD)
    rid = response["X-Request-ID"]
    event = AuditEvent.objects.get(action="login.succeeded")
    assert event.request_id == rid
    (audit_line,) = lines.of("iam.audit")
    assert audit_line["request_id"] == rid and audit_line["message"].startswith("login.succeeded")
    (request_line,) = lines.of("iam.request")
    assert request_line["request_id"] == rid
    assert request_line["route"] == "account_login" and request_line["method"] == "POST"
    assert request_line["status"] == 302 and request_line["message"].startswith(
        "POST account_login"
    )
    assert request_line["duration_ms"] >= 0
    # The session's next request is another id, by the same person.
    with captured() as lines:
        response = client.get(f"/users/{user.pk}/")
    (line,) = lines.of("iam.request")
    assert line["request_id"] == response["X-Request-ID"] != rid
    assert line["actor"] == f"user:{user.pk}"
    assert line["route"] == "backoffice:user-edit" and str(user.pk) not in line["route"]


def test_json_lines_have_every_field_and_the_trace_when_given(client):
    with captured() as lines:
        client.get("/login/")
    (record, line), *_ = [(r, x) for r, x in lines.items if r.name == "iam.request"]
    assert set(line) >= {
        "time",
        "level",
        "logger",
        "message",
        "request_id",
        "actor",
        "route",
        "method",
        "status",
    }
    assert line["actor"] == "anonymous" and line["level"] == "INFO" and line["status"] == 200
    assert "trace_id" not in line
    record.otelTraceID, record.otelSpanID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    traced = json.loads(JsonFormatter().format(record))
    assert traced["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert traced["span_id"] == "00f067aa0ba902b7"
    record.otelTraceID, record.otelSpanID = "0", "0"  # OpenTelemetry's "no span"
    assert "trace_id" not in json.loads(JsonFormatter().format(record))


def test_an_api_line_names_the_client_and_the_account(user):
    http = Client()
    token = account_token(http, user, scopes=("read",))
    with captured() as lines:
        response = http.get("/api/v1/me", **bearer(token))
    assert response.status_code == 200
    (line,) = lines.of("iam.request")
    assert line["actor"] == f"user:{user.pk} via client:person-client"
    assert line["route"] == "api:me" and line["request_id"] == response["X-Request-ID"]


def test_one_line_per_record_even_with_line_breaks_in_a_message():
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "a\nb\r\nc %s", ("d\ne",), None)
    assert "\n" not in JsonFormatter().format(record)
    assert json.loads(JsonFormatter().format(record))["message"] == "a\nb\r\nc d\ne"
    assert TextFormatter().format(record).split(" ", 5)[4] == "[-]"
    assert "request_id" not in record.__dict__  # the text formatter left no trace on it


def test_a_line_is_never_lost_to_its_request_facts():
    """Whatever the record's request holds, the line goes out (a formatter
    that raises loses the line)."""

    class Broken:
        META: dict = {}
        method = "GET"

        @property
        def scim_client(self):
            raise RuntimeError("the database is down")

    record = logging.LogRecord("django.request", logging.ERROR, __file__, 1, "boom", (), None)
    record.request = Broken()
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "boom" and line["actor"] is None and "status" in line
    assert "boom" in TextFormatter().format(record)


def test_the_text_format_shows_the_id(client, user):
    stream, handler = io.StringIO(), None
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextFormatter())
    logging.getLogger("iam").addHandler(handler)
    try:
        response = client.get("/login/")
    finally:
        logging.getLogger("iam").removeHandler(handler)
    assert f"INFO iam.request [{response['X-Request-ID']}] GET account_login 200 " in (
        stream.getvalue()
    )


# --- one id per command run -------------------------------------------------------


def test_a_command_run_has_one_id_of_its_own(root_user, django_capture_on_commit_callbacks):
    with captured() as lines, django_capture_on_commit_callbacks(execute=True):
        for name in ("one", "two"):
            call_command(
                "apiclient", "create", "--name", name, "--grant", "client_credentials",
                stdout=io.StringIO(),
            )  # fmt: skip
    first, second = AuditEvent.objects.filter(action="api.client.created").order_by("id")
    assert MADE.fullmatch(first.request_id) and MADE.fullmatch(second.request_id)
    assert first.request_id != second.request_id
    logged = [(x["request_id"], x["actor"]) for x in lines.of("iam.audit")]
    assert logged == [(first.request_id, "cli:apiclient"), (second.request_id, "cli:apiclient")]


def test_the_events_of_one_run_share_its_id(root_user):
    """A command that calls others: one run, one id."""
    from iam.commands import Command

    class Both(Command):
        def handle(self, *args, **options):
            call_command("scimtoken", "create", "--name", "a", stdout=io.StringIO())
            call_command("scimtoken", "create", "--name", "b", stdout=io.StringIO())

    call_command(Both())
    a, b = AuditEvent.objects.filter(action="scim.client_created").order_by("id")
    assert a.request_id == b.request_id and MADE.fullmatch(a.request_id)


def test_a_worker_task_has_its_task_s_id(user):
    """The task's id (the mail queue's), for what the task writes: here the
    queue runs each task at once (tests/settings.py), inside the request."""
    with captured() as lines:
        response = Client().post("/password/reset/", {"email": user.email})
    sent = [line for line in lines.of("iam.mail") if "sent" in line["message"]]
    assert sent, lines.items
    assert sent[0]["request_id"] != response["X-Request-ID"]
    task_lines = [x for x in lines.of("django_tasks") if "state=SUCCESSFUL" in x["message"]]
    task_id = task_lines[0]["message"].split("id=")[1].split()[0]
    assert sent[0]["request_id"] == task_id
    assert sent[0]["actor"] == "task:deliver"


# --- the audit line after the commit ------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_audit_line_is_written_only_for_a_committed_event(seed_groups):
    with captured() as lines:
        with pytest.raises(RuntimeError), transaction.atomic():
            audit(AuditAction.GROUP_CREATED, by=Actor.system(), target_label="rolled-back")
            raise RuntimeError("the write fails after its event")
        with transaction.atomic():
            audit(AuditAction.GROUP_CREATED, by=Actor.system(), target_label="kept")
            assert not lines.of("iam.audit"), "not before the commit"
    assert not AuditEvent.objects.filter(target_label="rolled-back").exists()
    (line,) = lines.of("iam.audit")
    assert "target=kept" in line["message"]


# --- a 503 is one line ----------------------------------------------------------------


def test_a_failing_readiness_probe_is_one_warning(client):
    with override_settings(CACHES=CLOSED_REDIS), captured(logging.DEBUG) as lines:
        for _ in range(3):
            assert client.get("/readyz").status_code == 503
    loud = [(r, x) for r, x in lines.items if r.levelno >= logging.WARNING]
    assert [r.name for r, _ in loud] == ["iam.health"] * 3, loud
    assert all(r.levelno == logging.WARNING for r, _ in loud)
    assert all(x["route"] == "readyz" and MADE.fullmatch(x["request_id"]) for _, x in loud)
    assert not lines.of("django.request")


def test_an_api_outage_is_one_warning_and_no_error(user, settings):
    """The JSON error rewrite (api.middleware) keeps "already logged"."""
    http = Client()
    token = account_token(http, user, scopes=("read",))
    http.raise_request_exception = False
    with override_settings(CACHES=CLOSED_REDIS), captured() as lines:
        response = http.get("/api/v1/me", **bearer(token))
    if response.status_code != 503:
        pytest.skip(f"this session store answers without the cache ({response.status_code})")
    loud = [(r.name, r.levelno) for r, _ in lines.items if r.levelno >= logging.WARNING]
    assert loud == [("iam.outage", logging.WARNING)], loud
    assert response["X-Request-ID"] == lines.of("iam.outage")[0]["request_id"]


def test_an_unexplained_503_is_logged_once_at_warning(client, settings):
    """A 503 nobody logged (a view answering it itself): the request line says
    it at WARNING, django.request not at ERROR."""
    from django.http import HttpResponse
    from django.urls import path

    from iam import urls as project_urls

    urlconf = type(
        "urls",
        (),
        {
            "urlpatterns": [
                path("busy/", lambda r: HttpResponse("busy", status=503), name="busy"),
                *project_urls.urlpatterns,
            ],
            "handler500": project_urls.handler500,
        },
    )
    settings.ROOT_URLCONF = urlconf
    with captured() as lines:
        assert client.get("/busy/").status_code == 503
    loud = [(r.name, r.levelno) for r, _ in lines.items if r.levelno >= logging.WARNING]
    assert loud == [("iam.request", logging.WARNING)], loud
    assert lines.of("iam.request")[0]["route"] == "busy"


# --- the audit screen, its CSV, the API ---------------------------------------------------


def _two_requests(client, user):
    first = login(client, user.email, PASSWORD)["X-Request-ID"]
    client.post("/logout/")
    second = login(client, user.email, PASSWORD)["X-Request-ID"]
    return first, second


def test_the_audit_screen_finds_a_request_s_events(admin, user):
    first, second = _two_requests(Client(), user)
    page = admin.get(f"/audit/?request_id={first}").content.decode()
    rows = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    assert rows.count("<tr>") == 1 and first in rows and second not in rows
    # Every event shows its id, as a link to that request's events.
    listing = admin.get("/audit/").content.decode()
    assert f'href="/audit/?request_id={second}"' in listing
    assert 'name="request_id"' in listing


def test_a_bad_request_id_filter_lists_nothing_and_says_why(admin, user):
    _two_requests(Client(), user)
    page = admin.get("/audit/?request_id=%22%3E%3Cscript%3E").content.decode()
    assert "Enter a request ID as a log line shows it." in page
    assert "No events match." in page and "<script>" not in page
    assert admin.get("/audit/export.csv?request_id=a%20b").status_code == 400


def test_the_csv_has_the_request_id(admin, user):
    first, _ = _two_requests(Client(), user)
    response = admin.get(f"/audit/export.csv?request_id={first}")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["action"], r["request_id"]) for r in rows] == [("login.succeeded", first)]


def test_the_api_finds_a_request_s_events(root_user, user):
    first, second = _two_requests(Client(), user)
    http = Client()
    token = account_token(http, root_user, scopes=("read",))
    body = http.get(f"/api/v1/audit?request_id={second}", **bearer(token)).json()
    assert [(e["action"], e["request_id"]) for e in body["results"]] == [
        ("login.succeeded", second)
    ]
    refused = http.get("/api/v1/audit?request_id=a%0Ab", **bearer(token))
    assert refused.status_code == 400


def test_the_schema_documents_the_field_and_the_filter(client):
    schema = client.get("/api/v1/schema/?format=json").content.decode()
    assert '"request_id"' in schema


# --- the suite's secret check can fail ------------------------------------------------


def test_the_secret_check_catches_a_planted_secret():
    check = LogSecretCheck()
    for value in ('planted-Secret-1"quoted\\', "in-a-traceback-42", "never-logged-123", "short"):
        check.remember(value)  # "short": too short to look for
    check.install()
    try:
        logging.getLogger("iam.anything").warning("oops: %s", 'planted-Secret-1"quoted\\')
        try:
            raise ValueError("in-a-traceback-42")
        except ValueError:
            logging.getLogger("iam.other").exception("failed")
    finally:
        check.uninstall()
    leaked = sorted(secret for secret, _ in check.leaks())
    assert leaked == ["in-a-traceback-42", 'planted-Secret-1"quoted\\']
    assert "plan" in check.report() and "neve" not in check.report()


def test_the_run_s_check_is_installed_and_sees_records(log_secrets, user):
    """The session's check is on the root logger, has the suite's password,
    and its generators are spied on: a reset key made now is remembered."""
    assert log_secrets in logging.getLogger().handlers
    assert PASSWORD in log_secrets.secrets
    before = log_secrets.records
    logging.getLogger("iam").info("a line %s", 7)
    assert log_secrets.records == before + 1 and "a line 7" in log_secrets.texts
    from accounts.tokens import PasswordResetTokens

    key = PasswordResetTokens().make_token(user)
    assert key in log_secrets.secrets
    make_password("a password set now 77")
    assert "a password set now 77" in log_secrets.secrets


# --- the production server in JSON mode ---------------------------------------------------


def test_the_image_s_server_logs_json_lines_joined_to_the_audit_trail(tmp_path):
    """granian as the image runs it, with IAM_LOG_FORMAT=json, behind a
    trusted proxy that sends its own request id: every line granian and the
    app write is one JSON object (granian's access log included, no reset
    key in it), and the app's request line, the response header and the
    audit event of a login share the proxy's id; a request without one
    gets a made id."""
    import os
    import sqlite3
    import time

    import requests

    from tests.servers import create_user, migrated_sqlite, started

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CACHE_URL")}
    env.update(
        DATABASE_URL=migrated_sqlite(tmp_path / "db.sqlite3"),
        DJANGO_SETTINGS_MODULE="iam.settings",
        DJANGO_SECRET_KEY="test-" + "x" * 60,
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_STATICFILES_STORAGE="django.contrib.staticfiles.storage.StaticFilesStorage",
        IAM_TRUSTED_PROXIES="127.0.0.1",
        IAM_MFA_REQUIRED_GROUPS="",
        IAM_LOG_FORMAT="json",
    )
    create_user(env, "ada@shop.example", "backoffice-users", PASSWORD)
    with started(env) as (server,):
        http = requests.Session()

        def call(method, path, **headers):
            cookies = "; ".join(f"{c.name}={c.value}" for c in http.cookies)
            headers = {"Cookie": cookies, "X-Forwarded-Proto": "https", **headers}
            headers["Referer"] = f"https://127.0.0.1:{server.port}/"
            return http.request(method, server.base + path, headers=headers, allow_redirects=False)

        call("GET", "/login/")
        form = {"login": "ada@shop.example", "password": PASSWORD}
        form["csrfmiddlewaretoken"] = http.cookies.get("csrftoken")
        response = http.post(
            server.base + "/login/",
            form,
            headers={
                "Cookie": "; ".join(f"{c.name}={c.value}" for c in http.cookies),
                "X-Forwarded-Proto": "https",
                "Referer": f"https://127.0.0.1:{server.port}/",
                "X-Request-ID": "proxy-made-1",
            },
            allow_redirects=False,
        )
        assert response.status_code == 302, response.text[:300]
        assert response.headers["X-Request-ID"] == "proxy-made-1"
        made = call("GET", "/password/reset/key/1-abc-secretkey99/").headers["X-Request-ID"]
        assert MADE.fullmatch(made)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "<redacted>" not in server.log.read_text():
            time.sleep(0.1)
        time.sleep(0.3)
        text = server.log.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # all JSON
    assert "secretkey99" not in text and PASSWORD not in text
    app = [x for x in lines if x["logger"] == "iam.request"]
    (login_line,) = [x for x in app if x["method"] == "POST"]
    assert login_line["request_id"] == "proxy-made-1" and login_line["route"] == "account_login"
    assert login_line["status"] == 302
    assert any(x["request_id"] == made for x in app)
    (audit_line,) = [x for x in lines if x["logger"] == "iam.audit"]
    assert audit_line["request_id"] == "proxy-made-1"
    access = [x for x in lines if x["logger"] == "granian.access"]
    assert access and {"method", "path", "status", "dt_ms"} <= set(access[0]), access
    assert any(x["path"] == "/password/reset/key/<redacted>/" for x in access), access
    db = sqlite3.connect(tmp_path / "db.sqlite3")
    rows = db.execute("SELECT request_id FROM accounts_auditevent WHERE action = 'login.succeeded'")
    assert rows.fetchall() == [("proxy-made-1",)]


def test_the_run_s_check_knows_the_secrets_the_flows_make(log_secrets, admin, root_user, user):
    """What the spies catch, made through the real doors: an API client's
    secret and its tokens, a SCIM token (as the command prints it), a TOTP
    secret (as the set-up page shows it), a reset key (as the mail has it)."""
    from django.core import mail

    from tests.api_support import make_client
    from tests.support.mfa import activate_totp
    from tests.support.resets import link_from_mail, request_reset

    http = Client()
    _client, secret = make_client("password", scopes=("read",), name="spied")
    token = account_token(http, user, scopes=("read",))
    assert {secret, token} <= log_secrets.secrets
    out = io.StringIO()
    call_command("scimtoken", "create", "--name", "spied", stdout=out)
    assert out.getvalue().strip().splitlines()[-1] in log_secrets.secrets
    assert activate_totp(admin) in log_secrets.secrets
    request_reset(Client(), user.email)
    key = link_from_mail(mail.outbox[-1]).rstrip("/").rsplit("-", 1)[-1]
    assert any(key in s for s in log_secrets.secrets)


def test_an_unknown_log_format_stops_the_start_with_a_clear_message():
    import os
    import subprocess
    import sys

    from tests.servers import ROOT

    env = {**os.environ, "IAM_LOG_FORMAT": "xml", "DJANGO_SETTINGS_MODULE": "iam.settings"}
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "IAM_LOG_FORMAT must be text or json, not 'xml'" in done.stderr


@pytest.mark.django_db(transaction=True)  # the worker closes connections between tasks
def test_the_real_worker_gives_each_task_its_own_id(settings, user):
    """`db_worker` as production runs it (the database backend): each task's
    lines carry that task's id and name it as the actor, not the worker
    run's id nor the request's that queued it."""
    import signal

    from django_tasks_db.models import DBTaskResult

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["mail"]}}
    queued = Client().post("/password/reset/", {"email": user.email})["X-Request-ID"]
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)}
    try:
        with captured() as lines:
            for _ in range(2):  # the look-up task queues the mail's
                call_command(
                    "db_worker", "--queue-name=mail", "--batch", "--no-startup-delay",
                    "--no-reload", stdout=io.StringIO(),
                )  # fmt: skip
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)
    tasks = {str(t.id): t.task_path.rsplit(".", 1)[-1] for t in DBTaskResult.objects.all()}
    assert sorted(tasks.values()) == ["deliver", "password_reset_requested"]
    mail_lines = lines.of("iam.mail")
    assert mail_lines, [x for _, x in lines.items]
    for line in mail_lines:
        assert line["request_id"] in tasks and line["request_id"] != queued
        assert line["actor"] == f"task:{tasks[line['request_id']]}"
