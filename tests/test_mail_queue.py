"""The mail queue (accounts.mail) with its real parts: the database backend,
the `db_worker` command in batch mode, and an SMTP server on loopback
(tests/smtp_peer.py) where a failing server matters. The rest of the suite
runs the queue's tasks at once (tests/settings.py)."""

import io
import logging
import os
import re
import signal
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from accounts import services
from accounts.audit import Actor
from accounts.models import AuditEvent
from tests.conftest import login
from tests.factories import PASSWORD, UserFactory
from tests.smtp_peer import SMTPPeer

# The worker runs in this process and commits as it goes, as in production.
pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
ADA = "ada@shop.example"
LINK = re.compile(r"http://testserver(/password/reset/key/(\S+)/)")


@pytest.fixture
def queue(settings):
    """The production backend: a task is a row in the database."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["mail"]}}


def _smtp_settings(settings, port: int) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5


@pytest.fixture
def smtp(queue, settings):
    with SMTPPeer() as peer:
        _smtp_settings(settings, peer.port)
        yield peer


def work(*options) -> None:
    """The real worker, until nothing is due: `db_worker --batch`."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)}
    try:
        call_command(
            "db_worker",
            "--queue-name=mail",
            "--batch",
            "--no-startup-delay",
            "--no-reload",
            *options,
            stdout=io.StringIO(),
        )
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)


def time_passes() -> None:
    """Every attempt scheduled for later is due now."""
    DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now())


def mailqueue(*args) -> str:
    out = io.StringIO()
    call_command("mailqueue", *args, stdout=out)
    return out.getvalue()


def forgot_password(email):
    response = Client().post("/password/reset/", {"email": email})
    assert response.status_code == 302 and response["Location"] == "/password/reset/done/"


def link_works(path: str) -> bool:
    response = Client().get(path)
    return response.status_code == 302 and "set-password" in response["Location"]


def _shape(sql: str) -> str:
    """A statement without its values: what the database was asked to do."""
    sql = re.sub(r"'(?:[^']|'')*'", "?", sql)
    return re.sub(r"\b\d+(?:\.\d+)?\b", "?", sql)


@pytest.fixture
def ada(db):
    return UserFactory(email=ADA, first_name="Ada")


def test_forgot_password_does_the_same_work_for_known_and_unknown_addresses(queue, ada):
    statements = {}
    for email in (ADA, "nobody@shop.example", ADA.upper()):
        with CaptureQueriesContext(connection) as queries:
            forgot_password(email)
        statements[email] = [_shape(q["sql"]) for q in queries.captured_queries]
    assert statements[ADA] == statements["nobody@shop.example"] == statements[ADA.upper()]
    (insert,) = statements[ADA]  # one statement: the task, with the typed address
    assert insert.startswith("INSERT") and "dbtaskresult" in insert
    assert mail.outbox == []  # nothing built or sent in the request
    assert not AuditEvent.objects.filter(action__startswith="password.reset").exists()

    work()
    assert [m.to for m in mail.outbox] == [[ADA], [ADA]]  # two requests for Ada's account
    assert link_works(LINK.search(mail.outbox[0].body)[1])
    event = AuditEvent.objects.filter(action="password.reset.requested").first()
    assert event.target_id == str(ada.pk) and event.ip == "127.0.0.1"


def test_the_reset_request_keeps_allauths_rate_limit(queue, ada):
    for _ in range(5):
        forgot_password(ADA)
    assert Client().post("/password/reset/", {"email": ADA}).status_code == 429
    assert DBTaskResult.objects.count() == 5


@pytest.mark.parametrize(
    "typed", ["", "not an email", "a" * 250 + "@shop.example", "a\x00@b.example"]
)
def test_a_bad_address_is_a_form_error_and_queues_nothing(queue, typed):
    response = Client().post("/password/reset/", {"email": typed})
    assert response.status_code == 200 and 'class="field-error"' in response.content.decode()
    assert not DBTaskResult.objects.exists()


def test_blocked_unknown_and_sso_only_addresses_get_no_mail(queue, ada):
    UserFactory(email="blocked@shop.example", status="blocked")
    sso_only = UserFactory(email="sso@shop.example", password="!")
    sso_only.identities.create(provider="keycloak", issuer="https://idp.example", subject="s-1")
    for email in ("blocked@shop.example", "nobody@shop.example", "sso@shop.example"):
        forgot_password(email)
    work()
    assert mail.outbox == []
    refused = AuditEvent.objects.get(action="password.reset.refused")
    assert refused.target_id == str(sso_only.pk) and refused.details == {"reason": "sso_only"}
    assert not AuditEvent.objects.filter(action="password.reset.requested").exists()


def test_admin_link_is_queued_with_the_request_and_delivered_by_the_worker(queue, seed_groups):
    root = UserFactory(email="root@shop.example", groups=["root"])
    ada = UserFactory(email=ADA)
    admin = Client()
    login(admin, root.email, PASSWORD)
    response = admin.post(f"/users/{ada.pk}/password-reset/")
    assert response.status_code == 302
    assert mail.outbox == []
    (task,) = DBTaskResult.objects.filter(status="READY")
    assert task.args_kwargs["kwargs"]["mail"]["link"] == "password_reset"

    work()
    (message,) = mail.outbox
    assert message.to == [ADA] and "one hour" in message.body
    assert link_works(LINK.search(message.body)[1])
    task.refresh_from_db()
    assert task.status == "SUCCESSFUL"

    # Queued in the caller's transaction: rolled back, there is no mail.
    request = RequestFactory().post("/")
    request.user = root
    with pytest.raises(RuntimeError), transaction.atomic():
        services.user_send_password_link(user=ada, invitation=True, by=Actor.of(request))
        raise RuntimeError("the request failed after queueing")
    assert DBTaskResult.objects.filter(status="READY").count() == 0


def test_no_link_for_an_account_blocked_or_readdressed_before_sending(queue, caplog):
    blocked = UserFactory(email="blocked@shop.example")
    moved = UserFactory(email="old@shop.example")
    kept = UserFactory(email=ADA)
    for user in (blocked, moved, kept):
        forgot_password(user.email)
    work("--max-tasks=3")  # the three requests decided: three reset mails queued
    assert mail.outbox == []
    blocked.status = "blocked"
    blocked.save()
    moved.email = "new@shop.example"
    moved.save()
    mail.outbox.clear()
    with caplog.at_level(logging.INFO, logger="iam.mail"):
        work()
    assert [m.to for m in mail.outbox] == [[ADA]]
    dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(dropped) == 2


def test_notifications_go_through_the_queue(queue, ada, client):
    login(client, ADA, PASSWORD)
    new = "a new and long passphrase 77"
    response = client.post(
        "/password/change/", {"oldpassword": PASSWORD, "password1": new, "password2": new}
    )
    assert response.status_code == 302
    assert mail.outbox == []
    from tests.support.mfa import activate_totp

    activate_totp(client)
    assert mail.outbox == []
    work()
    changed, activated = mail.outbox
    assert changed.to == [ADA] and changed.subject == "[Back Office] Your password was changed"
    assert "IP address: 127.0.0.1" in changed.body and "testserver" in changed.body
    assert activated.subject == "[Back Office] Authenticator app added"


def test_smtp_failure_is_retried_with_backoff_and_nothing_is_lost(smtp, ada, caplog):
    smtp.refuse = True
    forgot_password(ADA)
    with caplog.at_level(logging.INFO, logger="iam.mail"):
        work()
    assert smtp.attempts == 1 and smtp.messages == []
    (retry,) = DBTaskResult.objects.filter(status="READY")
    assert retry.args_kwargs["kwargs"]["attempt"] == 2
    wait = retry.run_after - retry.enqueued_at
    assert timedelta(seconds=59) < wait < timedelta(seconds=61)  # first delay: 60 s
    (warning,) = [r for r in caplog.records if r.name == "iam.mail"]
    assert warning.levelname == "WARNING" and ADA in warning.getMessage()
    assert "attempt=2" in mailqueue() and "queued: 1" in mailqueue()

    work()  # not due yet: the server is left alone
    assert smtp.attempts == 1

    smtp.refuse = False
    time_passes()
    work()
    assert smtp.attempts == 2
    ((to, message),) = smtp.messages
    assert to == [ADA] and "Reset your Back Office password" in message["Subject"]
    assert link_works(LINK.search(smtp.bodies()[0])[1])
    assert mailqueue().splitlines() == ["queued: 0", "failed: 0"]


@pytest.fixture
def closed_port():
    """A loopback port bound but not listening, kept for the test: connecting
    is refused, and no other process (CI's other leg) can start to listen there."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def test_gives_up_after_the_last_attempt_then_mailqueue_retries(
    queue, settings, ada, caplog, closed_port
):
    settings.IAM_MAIL_MAX_ATTEMPTS = 3
    _smtp_settings(settings, closed_port)  # the SMTP server is down
    forgot_password(ADA)
    delays = []
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            work()
            for retry in DBTaskResult.objects.filter(status="READY"):
                delays.append(round((retry.run_after - retry.enqueued_at).total_seconds()))
            time_passes()
    assert delays == [60, 120]
    (failed,) = DBTaskResult.objects.filter(status="FAILED")
    assert "MailNotSent" in failed.exception_class_path
    (error,) = [r for r in caplog.records if r.name == "iam.mail" and r.levelname == "ERROR"]
    assert ADA in error.getMessage() and "gave up after 3 attempts" in error.getMessage()
    assert "/password/reset/key/" not in caplog.text

    listing = mailqueue()
    assert "queued: 0" in listing and "failed: 1" in listing
    line = next(x for x in listing.splitlines() if str(failed.id) in x)
    assert f"to={ADA}" in line and "attempt=3" in line and "MailNotSent" in line

    before = list(DBTaskResult.objects.values_list("id", "status", "return_value"))
    for bad in (
        ["retry", "not-an-id"],
        ["retry", "00000000-0000-0000-0000-000000000000"],
        ["retry"],
    ):
        with pytest.raises(CommandError):
            mailqueue(*bad)
    assert list(DBTaskResult.objects.values_list("id", "status", "return_value")) == before

    with SMTPPeer() as smtp:
        _smtp_settings(settings, smtp.port)  # the server is back
        assert "queued again" in mailqueue("retry", str(failed.id))
        work()
        assert [to for to, _ in smtp.messages] == [[ADA]]
        assert link_works(LINK.search(smtp.bodies()[0])[1])
    assert mailqueue().splitlines() == ["queued: 0", "failed: 0"]
    with pytest.raises(CommandError, match="retried already"):
        mailqueue("retry", str(failed.id))


def test_no_link_or_token_in_the_task_table_or_the_logs(queue, seed_groups, caplog):
    root = UserFactory(email="root@shop.example", groups=["root"])
    ada = UserFactory(email=ADA)
    admin = Client()
    login(admin, root.email, PASSWORD)
    with caplog.at_level(logging.DEBUG):
        forgot_password(ADA)
        admin.post(f"/users/{ada.pk}/password-reset/")
        admin.post(
            "/users/add/",
            {"first_name": "A", "last_name": "T", "email": "alan@shop.example"}
            | {"status": "active", "password_mode": "invite", "groups": []},
        )
        work()
    keys = [LINK.search(m.body)[2] for m in mail.outbox]
    assert len(keys) == 3 and all(link_works(f"/password/reset/key/{k}/") for k in keys[1:])
    table = str(list(DBTaskResult.objects.values()))
    assert "/password/reset/key/" not in table and "/password/reset/key/" not in caplog.text
    for key in keys:
        assert key.split("-", 1)[1] not in table and key not in caplog.text


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="a second process shares the test database on PostgreSQL only",
)
def test_a_separate_worker_process_sends_over_smtp(queue, ada):
    """As deployed: the app queues, `db_worker` in its own process sends."""
    forgot_password(ADA)
    test_db = connection.settings_dict["NAME"]
    database = urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{test_db}")
    with SMTPPeer() as smtp:
        env = {
            **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "CACHE_URL")},
            "DJANGO_SETTINGS_MODULE": "iam.settings",
            "DJANGO_SECRET_KEY": django_settings.SECRET_KEY,
            "DATABASE_URL": database.geturl(),
            "EMAIL_URL": f"smtp://127.0.0.1:{smtp.port}",
        }
        subprocess.run(
            [sys.executable, "manage.py", "db_worker", "--queue-name=mail", "--batch"]
            + ["--no-startup-delay", "--no-reload"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
        assert [to for to, _ in smtp.messages] == [[ADA]]
        assert link_works(LINK.search(smtp.bodies()[0])[1])
    assert mail.outbox == []


def test_an_address_change_link_is_made_by_the_worker_and_dies_with_its_change(
    queue, seed_groups, caplog
):
    """The confirmation of a new address (accounts.services.emails): queued
    with the request, its link made by the worker (no token in the task
    table), and not sent at all once the change was cancelled."""
    root = UserFactory(email="root@shop.example", groups=["root"])
    ada = UserFactory(email=ADA, first_name="Ada", last_name="L")
    admin = Client()
    login(admin, root.email, PASSWORD)
    form = {"first_name": "Ada", "last_name": "L", "status": "active", "language": ""}
    admin.post(f"/users/{ada.pk}/", {**form, "email": "ada.l@shop.example"})
    assert mail.outbox == []
    kinds = sorted(
        task.args_kwargs["kwargs"]["mail"].get("link", "notice")
        for task in DBTaskResult.objects.filter(status="READY")
    )
    assert kinds == ["email_change", "notice"]
    assert "/email/confirm/" not in str(list(DBTaskResult.objects.values("args_kwargs")))
    with caplog.at_level(logging.INFO, logger="iam.mail"):
        work()
    (link_mail,) = [m for m in mail.outbox if m.to == ["ada.l@shop.example"]]
    path = re.search(r"http://testserver(/email/confirm/(\S+)/)", link_mail.body)[1]
    token = path.split("/")[3]
    assert token not in caplog.text
    opened = Client()
    assert opened.get(path)["Location"] == "/email/confirm/"
    assert opened.post("/email/confirm/").status_code == 200

    # A change cancelled before the worker runs: its mail is dropped.
    mail.outbox.clear()
    ada.refresh_from_db()
    admin.post(f"/users/{ada.pk}/", {**form, "email": "ada.m@shop.example"})
    admin.post(f"/users/{ada.pk}/email-change/cancel/")
    work()
    assert [m.to for m in mail.outbox] == [["ada.l@shop.example"]]  # the notice only
