"""The security-event webhook: signed batches of OCSF events, delivered by
the worker (django-tasks-db queue "events"), never inside a request.

One task per committed transaction (`collect`; per BATCH_MAX events of a
large one): it carries the events' ids,
not their content, and no secret; the worker builds the OCSF events when it
sends, so a retry sends the same events as they are in the trail.

A delivery is one POST of a JSON array, with
- `X-IAM-Delivery: <id>`: the same on every attempt of a batch (a receiver
  drops what it has seen; every event also carries its own metadata.uid);
- `X-IAM-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
  "<t>.<delivery id>." + body>` keyed by IAM_EVENTS_WEBHOOK_SECRET: Stripe's
  scheme, with the delivery id signed too, so that a replay can neither pass
  an old t (the receiver refuses one) nor a new id (its deduplication).

Answers: 2xx delivered; a network error, a timeout (no whole answer within
IAM_EVENTS_WEBHOOK_TIMEOUT), 5xx, 408 or 429 is
tried again after IAM_EVENTS_WEBHOOK_RETRY_SECONDS × 2^(attempt-1); any
other answer (a 4xx, a redirect: never followed) is a dead letter at once,
as is the last of IAM_EVENTS_WEBHOOK_MAX_ATTEMPTS: the task raises and stays
FAILED, iam_events_webhook_dead_letters_total goes up, and one `iam.events`
error line names the batch, never its body or the URL's path.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone
from django_tasks import task

from iam import metrics

log = logging.getLogger("iam.events")

QUEUE = "events"
SECRET_MIN = 32
SIGNATURE_HEADER = "X-IAM-Signature"
DELIVERY_HEADER = "X-IAM-Delivery"
CONNECT_TIMEOUT = 3.05
RETRIED_STATUSES = {408, 429}
# At most this many events a batch: a transaction that wrote more (a large
# access file applied) is several batches, each well under the 1 MB many
# collectors accept (Splunk HEC's default; an event is about 1 kB).
BATCH_MAX = 200


class NotDelivered(Exception):
    """A batch given up on: its task stays FAILED (a dead letter)."""


def check_settings() -> None:
    """A webhook that could leak or be forged is refused: when a command
    starts (stream.checks: the worker does not start) and before each send."""
    from sso.metadata import is_allowed_endpoint

    url = settings.IAM_EVENTS_WEBHOOK_URL
    if not url:
        return
    if not is_allowed_endpoint(url):
        raise ImproperlyConfigured(
            "IAM_EVENTS_WEBHOOK_URL must be an https:// URL "
            "(plain http only to a loopback address, for testing)."
        )
    if len(settings.IAM_EVENTS_WEBHOOK_SECRET.strip()) < SECRET_MIN:
        raise ImproperlyConfigured(
            f"IAM_EVENTS_WEBHOOK_SECRET must be set, at least {SECRET_MIN} characters, when "
            "IAM_EVENTS_WEBHOOK_URL is: the receiver checks each batch's signature with it. "
            "Make one with python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    ca_file = settings.IAM_EVENTS_WEBHOOK_CA_FILE
    if ca_file and not Path(ca_file).is_file():
        raise ImproperlyConfigured(f"IAM_EVENTS_WEBHOOK_CA_FILE: no file at {ca_file}")


def signature(body: bytes, *, secret: str, timestamp: int, delivery: str) -> str:
    """The X-IAM-Signature value of batch `delivery` with `body`, sent at `timestamp`."""
    signed = f"{timestamp}.{delivery}.".encode() + body
    mac = hmac.new(secret.encode(), signed, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


# --- One task per transaction ------------------------------------------------------


class _Batch:
    """The ids of one transaction's events. Each event registers `send` on
    commit; the first that survives (a savepoint rolled back drops its own)
    queues them all, the others find nothing left."""

    def __init__(self):
        self.ids: list[int] = []

    def send(self) -> None:
        ids, self.ids = sorted(set(self.ids)), []
        for start in range(0, len(ids), BATCH_MAX):
            chunk = ids[start : start + BATCH_MAX]
            deliver.enqueue(event_ids=chunk, delivery=uuid.uuid4().hex)


def collect(event_id: int) -> None:
    """Remember an event of the open transaction (no query): on commit its
    batch is queued once. Outside a transaction the event is committed
    already and goes at once, alone."""
    connection = transaction.get_connection()
    batch = getattr(connection, "_iam_events_batch", None)
    # A batch whose transaction ended without sending (rolled back) is gone
    # from the commit hooks: start afresh. Its hook is among the last ones
    # while its transaction lasts: searched from the end, found at once.
    if batch is None or not _pending(connection, batch.send):
        batch = connection._iam_events_batch = _Batch()
    batch.ids.append(event_id)
    transaction.on_commit(batch.send, robust=True)


def _pending(connection, send) -> bool:
    return any(hook[1] == send for hook in reversed(connection.run_on_commit))


# --- Delivery (the worker) ---------------------------------------------------------


@task(queue_name=QUEUE)
def deliver(*, event_ids: list[int], delivery: str, attempt: int = 1) -> dict:
    """POST one signed batch; a failure queues the next attempt or gives up."""
    from accounts.models import AuditEvent
    from stream.ocsf import event_to_ocsf

    url = settings.IAM_EVENTS_WEBHOOK_URL
    if not url:
        log.warning("events batch %s dropped: IAM_EVENTS_WEBHOOK_URL is no longer set", delivery)
        return {"outcome": "dropped"}
    try:
        check_settings()
    except ImproperlyConfigured as exc:
        metrics.EVENTS_DEAD_LETTERS.inc()
        log.error("events batch %s not delivered: %s", delivery, exc)
        raise NotDelivered(str(exc)) from None
    events = [event_to_ocsf(e) for e in AuditEvent.objects.filter(pk__in=event_ids).order_by("pk")]
    if not events:
        return {"outcome": "empty"}  # removed meanwhile (retention)
    body = json.dumps(events, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "backoffice-iam-events/1",
        DELIVERY_HEADER: delivery,
        SIGNATURE_HEADER: signature(
            body,
            secret=settings.IAM_EVENTS_WEBHOOK_SECRET,
            timestamp=int(time.time()),
            delivery=delivery,
        ),
    }
    try:
        response = _post(url, body, headers)
    except requests.exceptions.SSLError:
        return _failed(delivery, event_ids, attempt, "tls", retry=True)
    except requests.exceptions.Timeout:
        return _failed(delivery, event_ids, attempt, "timeout", retry=True)
    except requests.exceptions.RequestException:
        return _failed(delivery, event_ids, attempt, "network", retry=True)
    status = response.status_code
    if 200 <= status < 300:
        metrics.EVENTS_DELIVERED.inc()
        log.info(
            "events batch %s delivered to %s: %d events (attempt %d)",
            delivery,
            _host(url),
            len(events),
            attempt,
        )
        return {"outcome": "delivered", "attempt": attempt, "status": status}
    if 300 <= status < 400:
        return _failed(delivery, event_ids, attempt, "redirect", retry=False, status=status)
    retry = status >= 500 or status in RETRIED_STATUSES
    reason = str(status) if status in RETRIED_STATUSES else f"{status // 100}xx"
    return _failed(delivery, event_ids, attempt, reason, retry=retry, status=status)


def _post(url: str, body: bytes, headers: dict) -> requests.Response:
    """The POST, answered within IAM_EVENTS_WEBHOOK_TIMEOUT in all: a
    receiver that answers a byte at a time (each within the read timeout)
    must not hold the worker, and the mail behind it. An attempt given up on
    is left to end by itself (its thread is a daemon); a retry follows with
    the same delivery id."""
    limit = settings.IAM_EVENTS_WEBHOOK_TIMEOUT
    outcome: dict = {}

    def attempt() -> None:
        try:
            response = requests.post(
                url,
                data=body,
                headers=headers,
                timeout=(min(CONNECT_TIMEOUT, limit), limit),
                allow_redirects=False,
                verify=settings.IAM_EVENTS_WEBHOOK_CA_FILE or True,
                stream=True,  # the answer's body is never read
            )
            response.close()
            outcome["response"] = response
        except requests.exceptions.RequestException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=attempt, name="iam-events-post", daemon=True)
    thread.start()
    thread.join(limit + 0.5)
    if thread.is_alive():
        raise requests.exceptions.Timeout("no whole answer in time")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["response"]


def _host(url: str) -> str:
    """Where a batch went, for a log line: the host, never a path or query
    (a receiver's URL may carry its own token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def _failed(
    delivery: str, event_ids: list[int], attempt: int, reason: str, *, retry: bool, status=None
) -> dict:
    metrics.EVENTS_FAILED_ATTEMPTS.labels(metrics.bounded(reason, metrics.EVENTS_FAILURES)).inc()
    what = f"HTTP {status}" if status is not None else reason
    url = settings.IAM_EVENTS_WEBHOOK_URL
    maximum = settings.IAM_EVENTS_WEBHOOK_MAX_ATTEMPTS
    if not retry or attempt >= maximum:
        metrics.EVENTS_DEAD_LETTERS.inc()
        why = "refused" if not retry else f"gave up after {attempt} attempts"
        log.error(
            "events batch %s (%d events) not delivered to %s: %s (%s)",
            delivery,
            len(event_ids),
            _host(url),
            why,
            what,
        )
        raise NotDelivered(f"{why}: {what}")
    delay = settings.IAM_EVENTS_WEBHOOK_RETRY_SECONDS * 2 ** (attempt - 1)
    retry_task = deliver.using(run_after=timezone.now() + timedelta(seconds=delay)).enqueue(
        event_ids=event_ids, delivery=delivery, attempt=attempt + 1
    )
    log.warning(
        "events batch %s to %s failed (attempt %d of %d: %s); next attempt in %d s",
        delivery,
        _host(url),
        attempt,
        maximum,
        what,
        delay,
    )
    return {"outcome": "retrying", "attempt": attempt, "error": what, "next": str(retry_task.id)}
