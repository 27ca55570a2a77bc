"""`/metrics` and every request's latency, in one small early middleware.

Prometheus scrapes by IP address, so `/metrics` is answered here, before
host validation, sessions or authentication, like /healthz; it comes right
after accounts.middleware.TrustedProxyMiddleware, whose judgement of the
client address (X-Forwarded-For believed from IAM_TRUSTED_PROXIES only) the
allow-list uses. A scrape is refused, with one fixed answer that says
nothing of why, unless it carries `Authorization: Bearer <IAM_METRICS_TOKEN>`
or comes from an address in IAM_METRICS_ALLOW; with neither set, always.

Per request the cost is one histogram observation (and one counter for a
SCIM request): no query. The gauges (mail queue, sessions) are read from the
database at the scrape, so every worker reports the same numbers.
"""

from __future__ import annotations

import contextlib
import fcntl
import hmac
import ipaddress
import json
import os
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError
from django.http import HttpResponse
from django.urls import Resolver404, resolve
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector

from iam import metrics
from iam.proxies import parse_ip
from iam.warmup import WARMUP_KEY

PATH = "/metrics"
# A refused scrape costs nothing and is not rate limited: the token must be
# too long to guess (README: secrets.token_urlsafe(32) is 43 characters).
TOKEN_MIN = 16
UNMATCHED = "unmatched"
STATIC = "static"


def _networks(values) -> tuple:
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"IAM_METRICS_ALLOW: {value!r} is not an address or a network (10.0.0.0/8)"
            ) from None
    return tuple(networks)


def _refused() -> HttpResponse:
    response = HttpResponse(
        json.dumps({"error": "forbidden"}), status=403, content_type="application/json"
    )
    response["Cache-Control"] = "no-store"
    return response


def route_label(request) -> str:
    """The route's name (or pattern), never the path: a bounded set."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        # Answered by a middleware before the URL was resolved (a redirect
        # to the login page, a static file): resolved here, rarely.
        if request.path_info.startswith(settings.STATIC_URL):
            return STATIC
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return UNMATCHED
    return match.view_name or match.route or UNMATCHED


class MetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.token = settings.IAM_METRICS_TOKEN.encode()
        if self.token and len(self.token.strip()) < TOKEN_MIN:
            raise ImproperlyConfigured(
                f"IAM_METRICS_TOKEN is shorter than {TOKEN_MIN} characters: anyone could "
                "guess it. Make one with python3 -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'"
            )
        self.allow = _networks(settings.IAM_METRICS_ALLOW)

    def __call__(self, request):
        if request.path == PATH:
            if not self.allowed(request):
                return _refused()
            return scrape()
        if request.META.get(WARMUP_KEY):
            return self.get_response(request)  # the process warming itself, not a client
        started = time.perf_counter()
        response = self.get_response(request)
        status = metrics.status_class(response.status_code)
        method = metrics.method_label(request.method)
        metrics.HTTP_DURATION.labels(route_label(request), method, status).observe(
            time.perf_counter() - started
        )
        client = getattr(request, "scim_client", None)
        if client is not None or request.path.startswith("/scim/"):
            name = client.name if client is not None else "none"
            metrics.SCIM_REQUESTS.labels(name, method, status).inc()
        return response

    def allowed(self, request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if self.token and scheme.lower() == "bearer":
            return hmac.compare_digest(token.strip().encode(), self.token)
        if self.allow:
            address = parse_ip(request.META.get("REMOTE_ADDR", ""))
            return address is not None and any(address in network for network in self.allow)
        return False


# --- the scrape -------------------------------------------------------------------


def scrape() -> HttpResponse:
    folder = settings.PROMETHEUS_MULTIPROC_DIR
    if folder:
        with _locked(folder):
            compact(folder)
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=folder)
            body = generate_latest(registry)
    else:
        body = generate_latest(metrics.REGISTRY)
    body += generate_latest(_Gauges())
    response = HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = "no-store"
    return response


class _Gauges:
    """Read from the database at each scrape: the same in every worker."""

    def collect(self):
        from allauth.usersessions.models import UserSession
        from django.db.models import Count, Min, Q
        from django_tasks_db.models import DBTaskResult

        up = GaugeMetricFamily("iam_metrics_database_up", "1 when the gauges below could be read.")
        try:
            now = timezone.now()
            queued = DBTaskResult.objects.filter(queue_name="mail", status="READY").aggregate(
                depth=Count("id"), oldest=Min("enqueued_at")
            )
            # The security-event webhook's queue (stream.webhook).
            events = DBTaskResult.objects.filter(queue_name="events").aggregate(
                waiting=Count("id", filter=Q(status="READY")),
                failed=Count("id", filter=Q(status="FAILED")),
            )
            # The idle limit, plus the at most one minute by which last-seen
            # lags (accounts.middleware.SEEN_AT_MAX_INTERVAL).
            idle = settings.IAM_SESSION_IDLE_MINUTES * 60 + 60
            sessions = UserSession.objects.filter(
                last_seen_at__gte=now - timedelta(seconds=idle),
                created_at__gte=now - timedelta(hours=settings.IAM_SESSION_MAX_HOURS),
            ).count()
        except DatabaseError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily(
            "iam_mail_queue_depth", "Mails waiting to be sent.", value=queued["depth"]
        )
        oldest = (now - queued["oldest"]).total_seconds() if queued["oldest"] else 0
        yield GaugeMetricFamily(
            "iam_mail_queue_oldest_age_seconds",
            "Age of the oldest mail waiting to be sent (0: none).",
            value=max(0.0, oldest),
        )
        yield GaugeMetricFamily(
            "iam_events_webhook_queue_depth",
            "Batches of security events waiting for the webhook (first attempts and retries).",
            value=events["waiting"],
        )
        yield GaugeMetricFamily(
            "iam_events_webhook_failed_batches",
            "Batches given up on, still in the queue (dead letters until the maintenance "
            "removes failed tasks).",
            value=events["failed"],
        )
        yield GaugeMetricFamily(
            "iam_sessions_active",
            "Logged-in sessions seen within the idle limit and under the maximum age.",
            value=sessions,
        )


@contextlib.contextmanager
def _locked(folder: str):
    """One scrape at a time per folder: a scrape must not read a dead
    worker's file and the archive it is being merged into."""
    with open(Path(folder) / "scrape.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def compact(folder: str) -> int:
    """Merge the files of dead processes (a worker recycled after
    GRANIAN_WORKERS_LIFETIME, or one that died) into one archive file per
    type, and delete them: their counts stay in the sums, and the folder
    does not grow by two files per recycled worker. Counters and histogram
    buckets are sums, so merging is adding. Returns how many were merged."""
    merged = 0
    archives: dict[str, MmapedDict] = {}
    try:
        for path in sorted(Path(folder).glob("*.db")):
            typ, _, pid = path.stem.partition("_")
            if typ not in ("counter", "histogram") or not pid.isdigit() or _alive(int(pid)):
                continue
            archive = archives.get(typ)
            if archive is None:
                archive = archives[typ] = MmapedDict(str(Path(folder) / f"{typ}_archive.db"))
            for key, value, timestamp, _pos in MmapedDict.read_all_values_from_file(str(path)):
                archive.write_value(key, archive.read_value(key)[0] + value, timestamp)
            path.unlink()
            merged += 1
    finally:
        for archive in archives.values():
            archive.close()
    return merged
