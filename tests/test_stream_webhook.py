"""The security-event webhook (stream.webhook) with its real parts: the
database queue, `manage.py worker --batch`, and an HTTPS receiver on
loopback with a certificate made here (trusted through
IAM_EVENTS_WEBHOOK_CA_FILE) that checks each batch's signature as the
README tells a receiver to."""

import datetime as dt
import hashlib
import hmac
import io
import ipaddress
import json
import signal
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from accounts.audit import Actor, AuditAction, audit
from stream.webhook import QUEUE, check_settings
from tests.conftest import login
from tests.factories import PASSWORD, UserFactory
from tests.support import ocsf_schema
from tests.support.metrics import samples, total

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
SECRET = "webhook-secret-" + "k" * 40
METRICS_TOKEN = "metrics-token-" + "s" * 32


# --- An HTTPS receiver on loopback ---------------------------------------------------


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA), and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "events receiver")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "receiver.pem", folder / "receiver.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def verified(headers: dict, body: bytes, secret: str, tolerance: int = 300) -> bool:
    """What a receiver does (README "Security-event stream (OCSF)")."""
    parts = dict(p.split("=", 1) for p in headers.get("X-IAM-Signature", "").split(","))
    timestamp = int(parts.get("t", "0"))
    if abs(time.time() - timestamp) > tolerance:
        return False  # too old: a replay
    signed = f"{timestamp}.{headers.get('X-IAM-Delivery', '')}.".encode() + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), parts.get("v1", ""))


def readme_verify():
    """The receiver's check README "Verifying a batch" shows, as written."""
    section = (ROOT / "README.md").read_text().split("### Verifying a batch", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(code, namespace)  # noqa: S102 - our own README's example
    return namespace["verify"]


class Receiver:
    """Answers each POST with the next of `answers` (then 200), keeping
    what came: (headers, body, signature verified)."""

    def __init__(self, folder: Path):
        self.cert, key = _certificate(folder)
        self.answers: list[int] = []
        self.trickle = 0.0  # seconds between the bytes of an answer (0: at once)
        self.received: list[tuple[dict, bytes, bool]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = dict(self.headers.items())
                owner.received.append((headers, body, verified(headers, body, SECRET)))
                status = owner.answers.pop(0) if owner.answers else 200
                if owner.trickle:
                    for byte in f"HTTP/1.1 {status} OK\r\nX-Slow: yes\r\n\r\n".encode():
                        self.wfile.write(bytes([byte]))
                        time.sleep(owner.trickle)
                    return
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", f"https://127.0.0.1:{owner.port}/elsewhere")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}/ingest?token=receiver-own-token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def events(self) -> list[dict]:
        return [event for _h, body, _ok in self.received for event in json.loads(body)]


@pytest.fixture
def receiver(tmp_path, settings, log_secrets):
    """The receiver, configured as the webhook, and the production queue."""
    log_secrets.remember(SECRET)
    peer = Receiver(tmp_path)
    settings.TASKS = {
        "default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["mail", QUEUE]}
    }
    settings.IAM_EVENTS_WEBHOOK_URL = peer.url
    settings.IAM_EVENTS_WEBHOOK_SECRET = SECRET
    settings.IAM_EVENTS_WEBHOOK_CA_FILE = str(peer.cert)
    settings.IAM_EVENTS_WEBHOOK_TIMEOUT = 5
    settings.IAM_MAINTENANCE_EVERY = "off"
    settings.IAM_METRICS_TOKEN = METRICS_TOKEN
    yield peer
    peer.close()


def work() -> str:
    """The real worker, until nothing is due: `manage.py worker --batch`."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)}
    out = io.StringIO()
    try:
        call_command("worker", "--batch", "--expiry-every=3600", stdout=out, stderr=out)
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)
    return out.getvalue()


def time_passes() -> None:
    """Every attempt scheduled for later is due now."""
    DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now())


def tasks(status=None):
    rows = DBTaskResult.objects.filter(queue_name=QUEUE)
    return rows.filter(status=status) if status else rows


def scraped() -> list:
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {METRICS_TOKEN}")
    assert response.status_code == 200
    return samples(response.content.decode())


def three_in_one_transaction(user) -> list[int]:
    with transaction.atomic():
        by = Actor(user=user, ip="203.0.113.9", channel="web")
        return [
            audit(AuditAction.USER_BLOCKED, by=by, target=user).pk,
            audit(AuditAction.USER_UNBLOCKED, by=by, target=user).pk,
            audit(AuditAction.MFA_RESET, by=by, target=user).pk,
        ]


# --- Delivered, signed, one batch per transaction ------------------------------------


def test_a_transaction_goes_as_one_signed_batch_of_valid_ocsf(receiver):
    user = UserFactory(email="ada@shop.example")
    before = total(scraped(), "iam_events_webhook_delivered_total")
    ids = three_in_one_transaction(user)
    assert tasks().count() == 1
    # The task holds the ids, no event and no secret.
    row = tasks().get()
    assert row.args_kwargs["kwargs"]["event_ids"] == ids
    assert SECRET not in json.dumps(row.args_kwargs) and "ada@" not in json.dumps(row.args_kwargs)

    work()

    assert len(receiver.received) == 1
    headers, body, signature_ok = receiver.received[0]
    assert signature_ok
    assert headers["Content-Type"] == "application/json"
    assert headers["X-IAM-Delivery"] == row.args_kwargs["kwargs"]["delivery"]
    sent = json.loads(body)
    assert [e["metadata"]["uid"] for e in sent] == [str(i) for i in ids]
    assert [e["metadata"]["event_code"] for e in sent] == [
        "user.blocked",
        "user.unblocked",
        "mfa.reset",
    ]
    for event in sent:
        assert ocsf_schema.problems(event) == []
    # A forged or altered batch fails the receiver's check, the README's too.
    assert not verified(headers, body + b" ", SECRET)
    assert not verified(headers, body, "another-secret-" + "x" * 40)
    verify = readme_verify()
    assert verify(headers, body, SECRET) == sent
    for forged in (body + b" ", body.replace(b"user.blocked", b"user.created")):
        with pytest.raises(ValueError, match="bad signature"):
            verify(headers, forged, SECRET)
    old = {**headers, "X-IAM-Signature": headers["X-IAM-Signature"].replace("t=", "t=1")}
    with pytest.raises(ValueError, match="too old"):
        verify(old, body, SECRET)
    renamed = {**headers, "X-IAM-Delivery": "0" * 32}  # a replay dressed as a new batch
    with pytest.raises(ValueError, match="bad signature"):
        verify(renamed, body, SECRET)
    assert not verified(renamed, body, SECRET)
    assert tasks("SUCCESSFUL").count() == 1
    assert total(scraped(), "iam_events_webhook_delivered_total") == before + 1


def test_each_autocommitted_write_is_its_own_batch_and_a_login_goes_too(receiver):
    user = UserFactory(email="ada@shop.example")
    audit(AuditAction.USER_BLOCKED, by=Actor.system(), target=user)
    audit(AuditAction.USER_UNBLOCKED, by=Actor.system(), target=user)
    assert tasks().count() == 2
    login(Client(), user.email, PASSWORD)
    work()
    codes = [e["metadata"]["event_code"] for e in receiver.events()]
    assert codes[:2] == ["user.blocked", "user.unblocked"]
    assert "login.succeeded" in codes
    assert all(ok for _h, _b, ok in receiver.received)
    assert PASSWORD.encode() not in b"".join(body for _h, body, _ok in receiver.received)


def test_a_rolled_back_transaction_sends_nothing_and_spoils_no_later_batch(receiver):
    user = UserFactory(email="ada@shop.example")
    with pytest.raises(RuntimeError), transaction.atomic():
        audit(AuditAction.USER_BLOCKED, by=Actor.system(), target=user)
        raise RuntimeError
    assert tasks().count() == 0
    with transaction.atomic():
        with pytest.raises(RuntimeError), transaction.atomic():  # a savepoint rolled back
            audit(AuditAction.USER_DELETED, by=Actor.system(), target=user)
            raise RuntimeError
        kept = audit(AuditAction.USER_UPDATED, by=Actor.system(), target=user)
    assert tasks().count() == 1
    work()
    assert [e["metadata"]["uid"] for e in receiver.events()] == [str(kept.pk)]


def test_a_large_transaction_goes_in_batches_of_at_most_batch_max(receiver, monkeypatch):
    monkeypatch.setattr("stream.webhook.BATCH_MAX", 2)
    ids = three_in_one_transaction(UserFactory(email="ada@shop.example"))
    assert sorted(row.args_kwargs["kwargs"]["event_ids"] for row in tasks()) == [ids[:2], ids[2:]]
    work()
    assert [len(json.loads(body)) for _h, body, _ok in receiver.received] == [2, 1]
    assert len({headers["X-IAM-Delivery"] for headers, _b, _ok in receiver.received}) == 2


# --- The request path stays cheap -----------------------------------------------------


def test_without_a_webhook_an_audit_write_is_one_insert_and_no_task(settings):
    settings.IAM_EVENTS_WEBHOOK_URL = ""
    user = UserFactory(email="ada@shop.example")
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        audit(AuditAction.USER_BLOCKED, by=Actor.system(), target=user)
    statements = [
        q["sql"]
        for q in queries.captured_queries
        if not q["sql"].upper().startswith(("SAVEPOINT", "RELEASE", "BEGIN", "COMMIT"))
    ]
    assert len(statements) == 1 and statements[0].startswith("INSERT"), statements
    assert DBTaskResult.objects.count() == 0


def test_with_a_webhook_a_transaction_adds_one_task_insert_after_its_commit(receiver):
    user = UserFactory(email="ada@shop.example")
    with CaptureQueriesContext(connection) as queries:
        three_in_one_transaction(user)
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 4, inserts  # three events, one task
    assert sum("django_tasks_database_dbtaskresult" in s for s in inserts) == 1


# --- Retries and dead letters ---------------------------------------------------------


def test_a_500_is_tried_again_and_delivered_once(receiver, settings, caplog):
    receiver.answers = [500]
    found = scraped()
    failed_before = total(found, "iam_events_webhook_failed_attempts_total", reason="5xx")
    delivered_before = total(found, "iam_events_webhook_delivered_total")
    three_in_one_transaction(UserFactory(email="ada@shop.example"))
    work()
    assert len(receiver.received) == 1
    assert tasks("READY").count() == 1  # the retry, for later
    work()
    assert len(receiver.received) == 1  # not due yet
    time_passes()
    work()
    assert len(receiver.received) == 2
    first, second = receiver.received
    assert first[0]["X-IAM-Delivery"] == second[0]["X-IAM-Delivery"]  # the receiver may dedupe
    assert json.loads(first[1]) == json.loads(second[1])
    assert second[2]
    found = scraped()
    assert (
        total(found, "iam_events_webhook_failed_attempts_total", reason="5xx") == failed_before + 1
    )
    assert total(found, "iam_events_webhook_delivered_total") == delivered_before + 1
    assert total(found, "iam_events_webhook_queue_depth") == 0


@pytest.mark.parametrize("answer", [400, 401, 404, 302])
def test_a_refusal_or_redirect_is_a_dead_letter_at_once(receiver, answer, caplog):
    receiver.answers = [answer]
    dead_before = total(scraped(), "iam_events_webhook_dead_letters_total")
    three_in_one_transaction(UserFactory(email="ada@shop.example"))
    work()
    time_passes()
    work()
    assert len(receiver.received) == 1  # neither retried nor redirected
    assert tasks("FAILED").count() == 1 and tasks("READY").count() == 0
    found = scraped()
    assert total(found, "iam_events_webhook_dead_letters_total") == dead_before + 1
    assert total(found, "iam_events_webhook_failed_batches") == 1
    _logged_without_body_or_secret(caplog, receiver)


def test_the_last_attempt_failing_is_a_dead_letter(receiver, settings, caplog):
    settings.IAM_EVENTS_WEBHOOK_MAX_ATTEMPTS = 3
    receiver.answers = [503, 429, 408, 200]
    dead_before = total(scraped(), "iam_events_webhook_dead_letters_total")
    three_in_one_transaction(UserFactory(email="ada@shop.example"))
    for _ in range(4):
        work()
        time_passes()
    assert len(receiver.received) == 3
    assert tasks("FAILED").count() == 1
    assert total(scraped(), "iam_events_webhook_dead_letters_total") == dead_before + 1
    assert "gave up after 3 attempts" in caplog.text
    _logged_without_body_or_secret(caplog, receiver)


def test_an_untrusted_certificate_or_no_receiver_is_retried_not_sent(receiver, settings):
    settings.IAM_EVENTS_WEBHOOK_CA_FILE = ""  # the system's CAs: the receiver is self-signed
    tls_before = total(scraped(), "iam_events_webhook_failed_attempts_total", reason="tls")
    three_in_one_transaction(UserFactory(email="ada@shop.example"))
    work()
    assert receiver.received == []
    assert tasks("READY").count() == 1
    assert total(scraped(), "iam_events_webhook_failed_attempts_total", reason="tls") == (
        tls_before + 1
    )
    receiver.close()  # nobody listens any more
    time_passes()
    work()
    assert tasks("READY").count() == 1  # a network error: tried again later


def test_a_receiver_answering_a_byte_at_a_time_does_not_hold_the_worker(receiver, settings):
    """Each byte comes within the read timeout; the whole answer does not
    come within IAM_EVENTS_WEBHOOK_TIMEOUT: given up, tried again later."""
    settings.IAM_EVENTS_WEBHOOK_TIMEOUT = 1
    receiver.trickle = 0.3  # some 40 bytes: 12 s
    before = total(scraped(), "iam_events_webhook_failed_attempts_total", reason="timeout")
    three_in_one_transaction(UserFactory(email="ada@shop.example"))
    started = time.monotonic()
    work()
    assert time.monotonic() - started < 5
    assert len(receiver.received) == 1
    assert tasks("READY").count() == 1  # the retry
    after = total(scraped(), "iam_events_webhook_failed_attempts_total", reason="timeout")
    assert after == before + 1


def _logged_without_body_or_secret(caplog, receiver):
    """The delivery's lines (the webhook's, the queue's, the worker's; the
    audit line names its event, as it always has)."""
    text = "\n".join(
        caplog.handler.format(r) for r in caplog.records if not r.name.startswith("iam.audit")
    )
    assert "events batch" in text
    assert SECRET not in text
    assert "ada@shop.example" not in text  # no event content
    assert "receiver-own-token" not in text and "/ingest" not in text  # nor the URL's path
    for _headers, body, _ok in receiver.received:
        assert body.decode() not in text


# --- The settings -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "secret", "message"),
    [
        ("http://siem.example/ingest", SECRET, "must be an https:// URL"),
        ("ftp://siem.example/", SECRET, "must be an https:// URL"),
        ("https://siem.example/ingest", "", "at least 32 characters"),
        ("https://siem.example/ingest", "short-secret", "at least 32 characters"),
        ("https://siem.example/ingest", " " * 40, "at least 32 characters"),
    ],
)
def test_a_webhook_that_could_leak_or_be_forged_is_refused(settings, url, secret, message):
    settings.IAM_EVENTS_WEBHOOK_URL, settings.IAM_EVENTS_WEBHOOK_SECRET = url, secret
    with pytest.raises(ImproperlyConfigured, match=message):
        check_settings()


def test_a_missing_ca_file_is_refused(settings, tmp_path):
    settings.IAM_EVENTS_WEBHOOK_URL, settings.IAM_EVENTS_WEBHOOK_SECRET = (
        "https://s.example",
        SECRET,
    )
    settings.IAM_EVENTS_WEBHOOK_CA_FILE = str(tmp_path / "nothing.pem")
    with pytest.raises(ImproperlyConfigured, match="IAM_EVENTS_WEBHOOK_CA_FILE: no file at"):
        check_settings()


def test_a_batch_queued_before_the_url_was_made_unsafe_is_not_sent(receiver, settings):
    """The worker checks again before each send: a batch queued under a
    good configuration never goes out in clear (a dead letter instead)."""
    three_in_one_transaction(UserFactory(email="ada@shop.example"))
    settings.IAM_EVENTS_WEBHOOK_URL = receiver.url.replace(
        "https://127.0.0.1", "http://siem.example"
    )
    dead_before = total(scraped(), "iam_events_webhook_dead_letters_total")
    work()
    assert receiver.received == [] and tasks("FAILED").count() == 1
    assert total(scraped(), "iam_events_webhook_dead_letters_total") == dead_before + 1


@pytest.mark.parametrize(
    "url", ["https://siem.example/x", "http://127.0.0.1:9/x", "http://localhost/"]
)
def test_https_or_loopback_with_a_long_secret_is_accepted(settings, url):
    settings.IAM_EVENTS_WEBHOOK_URL, settings.IAM_EVENTS_WEBHOOK_SECRET = url, SECRET
    check_settings()


def test_a_short_secret_stops_the_worker_at_start_with_one_clear_line(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "iam.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3",
        "IAM_EVENTS_WEBHOOK_URL": "https://siem.example/ingest",
        "IAM_EVENTS_WEBHOOK_SECRET": "too-short",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "worker", "--batch"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "(stream.E001) IAM_EVENTS_WEBHOOK_SECRET must be set, at least 32" in result.stderr
    assert "Traceback" not in result.stderr and "too-short" not in result.stderr
