"""OpenTelemetry traces, off unless an OTLP endpoint is set (README "Traces").

`setup()` is called once per process where the app starts: iam/wsgi.py
(granian imports it in each worker process, so the exporter's thread is born
in the worker; were the app loaded before a fork, the SDK's span processor
restarts its thread in the child) and manage.py (the mail worker, commands).
With traces off it returns before importing anything of OpenTelemetry:
nothing is patched, no thread runs, nothing costs.

iam/settings.py reads only whether traces are on (the endpoint), the
protocol and the excluded URLs; every other OTEL_* variable (service name,
resource attributes, headers, timeouts, sampler, batch sizes) is read by the
SDK itself, as its documentation says, so an operator's OpenTelemetry
knowledge applies unchanged.

Spans never carry a secret: `Redacting` rewrites every finished span before
export (query values, the key of a password-reset link, credentials in URLs,
captured secret headers), whatever the instrumentations recorded.
"""

from __future__ import annotations

import logging
import re
from contextlib import nullcontext
from urllib.parse import urlsplit, urlunsplit

from iam.accesslog import REDACTED, redact_path

logger = logging.getLogger("iam.telemetry")

# opentelemetry.trace.get_current_span once traces are set up, else None
# (the log filter must not import OpenTelemetry when traces are off).
_current_span = None
_tracer = None

# Attributes holding a URL, a target (path?query) or a query alone.
URL_KEYS = frozenset({"http.url", "url.full", "http.target", "url.query"})
# Captured headers (OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_*) whose value is secret.
SECRET_HEADER = re.compile(
    r"^http\.(request|response)\.header\.(.*(authorization|cookie|token|secret|key|session|csrf|password).*)$"
)
QUERY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-\[\]]{0,63}")
# Commands that run for hours: one span around them would never be exported.
LONG_RUNNING = frozenset({"runserver", "db_worker", "worker", "shell", "dbshell"})


def redact_query(query: str) -> str:
    """A query string with every value redacted; a parameter's name is kept
    when it looks like one (`code=`), else the whole part goes (`?<token>`)."""
    if not query:
        return query
    parts = []
    for part in query.split("&"):
        name, equals, _ = part.partition("=")
        parts.append(f"{name}={REDACTED}" if equals and QUERY_NAME.fullmatch(name) else REDACTED)
    return "&".join(parts)


def redact_url(value: str) -> str:
    """A URL or target without credentials, query values or a reset key."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return REDACTED
    netloc = parts.netloc.rpartition("@")[2]
    query = redact_query(parts.query)
    return urlunsplit((parts.scheme, netloc, redact_path(parts.path), query, ""))


def redact_attribute(key: str, value):
    """What may be exported of one attribute."""
    if SECRET_HEADER.match(key):
        return [REDACTED]
    if not isinstance(value, str):
        return value
    if key == "url.query":
        return redact_query(value)
    if key in URL_KEYS:
        return redact_url(value)
    return redact_path(value)


def _redact_all(attributes) -> tuple[dict, bool]:
    attributes = dict(attributes or {})
    clean = {key: redact_attribute(key, value) for key, value in attributes.items()}
    return clean, clean != attributes


def redacted(span):
    """`span` (finished) as it may leave the process: a copy with its
    attributes and events' attributes redacted, or itself when clean."""
    from opentelemetry.sdk.trace import Event, ReadableSpan

    attributes, changed = _redact_all(span.attributes)
    events = []
    for event in span.events:
        clean, event_changed = _redact_all(event.attributes)
        changed = changed or event_changed
        events.append(Event(event.name, clean, event.timestamp) if event_changed else event)
    if not changed:
        return span
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _processor_classes():
    from opentelemetry.sdk.trace import SpanProcessor

    class Redacting(SpanProcessor):
        """Hands `inner` (the batch exporter) each finished span redacted."""

        def __init__(self, inner):
            self._inner = inner

        def on_start(self, span, parent_context=None):
            self._inner.on_start(span, parent_context=parent_context)

        def on_end(self, span):
            self._inner.on_end(redacted(span))

        def shutdown(self):
            self._inner.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return self._inner.force_flush(timeout_millis)

    return Redacting


def _sampler():
    """The sampler of OTEL_TRACES_SAMPLER, except that a database, cache or
    HTTP call made outside any traced work (the mail worker polling its
    queue, a connection check) starts no trace of its own."""
    from opentelemetry.sdk.trace import sampling
    from opentelemetry.trace import SpanKind, get_current_span

    inner = sampling._get_from_env_or_default()

    class WithinWork(sampling.Sampler):
        def should_sample(self, parent_context, trace_id, name, kind=None, *args, **kwargs):
            parent = get_current_span(parent_context).get_span_context()
            if kind == SpanKind.CLIENT and not parent.is_valid:
                return sampling.SamplingResult(sampling.Decision.DROP)
            return inner.should_sample(parent_context, trace_id, name, kind, *args, **kwargs)

        def get_description(self) -> str:
            return f"WithinWork{{{inner.get_description()}}}"

    return WithinWork()


def _exporter(protocol: str):
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                OTLPSpanExporter as GrpcExporter,
            )
        except ImportError:
            return None
        return GrpcExporter()
    return None


def _middleware_position(middleware: list[str]) -> int:
    """Just after the proxy middleware: health probes (any Host) are answered
    before it, and the client address it recorded is the real one."""
    for index, path in enumerate(middleware):
        if path.endswith("TrustedProxyMiddleware"):
            return index + 1
    return 0


def _trace_tasks(tracer) -> None:
    """One span per task the mail worker runs, its queries its children:
    the task's name and queue, never its arguments (addresses, links)."""
    import threading

    from django_tasks_db.compat import task_finished, task_started
    from opentelemetry import context, trace
    from opentelemetry.trace import SpanKind, Status, StatusCode

    running = threading.local()

    def started(sender, task_result, **kwargs):
        task = task_result.task
        span = tracer.start_span(
            f"task {task.name}",
            kind=SpanKind.CONSUMER,
            attributes={"messaging.destination.name": task.queue_name, "task.id": task_result.id},
        )
        running.current = (span, context.attach(trace.set_span_in_context(span)))

    def finished(sender, task_result, **kwargs):
        current = getattr(running, "current", None)
        if current is None:
            return
        running.current = None
        span, token = current
        if task_result.status == "FAILED":
            span.set_status(Status(StatusCode.ERROR))
        context.detach(token)
        span.end()

    task_started.connect(started, weak=False, dispatch_uid="iam.telemetry.task_started")
    task_finished.connect(finished, weak=False, dispatch_uid="iam.telemetry.task_finished")


def setup() -> bool:
    """Turn traces on for this process when settings say so; True if on.
    Before the WSGI handler is built: the Django instrumentation adds its
    middleware to settings.MIDDLEWARE."""
    global _current_span, _tracer
    from django.conf import settings

    if not settings.TRACES_ENABLED:
        return False
    if _tracer is not None:
        return True
    exporter = _exporter(settings.TRACES_PROTOCOL)
    if exporter is None:
        logger.error(
            "traces are off: OTLP protocol %r is not supported here (use http/protobuf, or "
            "grpc with opentelemetry-exporter-otlp-proto-grpc installed)",
            settings.TRACES_PROTOCOL,
        )
        return False

    from opentelemetry import trace
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor
    from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES win over this default name.
    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": "backoffice-iam"}))
    provider = TracerProvider(resource=resource, sampler=_sampler())
    provider.add_span_processor(_processor_classes()(BatchSpanProcessor(exporter)))
    trace.set_tracer_provider(provider)

    DjangoInstrumentor().instrument(
        excluded_urls=settings.TRACES_EXCLUDED_URLS,
        middleware_position=_middleware_position(list(settings.MIDDLEWARE)),
    )
    PsycopgInstrumentor().instrument()
    SQLite3Instrumentor().instrument()  # the embedded default of `make run`
    RedisInstrumentor().instrument()
    RequestsInstrumentor().instrument()
    _current_span = trace.get_current_span
    _tracer = trace.get_tracer("iam")
    _trace_tasks(_tracer)
    return True


def setup_command(argv: list[str]) -> bool:
    """`setup()` for manage.py, once its --settings and --pythonpath are
    applied as Django applies them (reading settings first would fix them)."""
    from django.core.management.base import CommandError, CommandParser, handle_default_options

    parser = CommandParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--settings")
    parser.add_argument("--pythonpath")
    parser.add_argument("args", nargs="*")
    try:
        options, _ = parser.parse_known_args(argv[2:])
        handle_default_options(options)
    except CommandError:
        pass  # Django reports it
    return setup()


def command_span(argv: list[str]):
    """One span around a short management command (its database and
    provider calls are its children); nothing for long-running ones."""
    name = argv[1] if len(argv) > 1 else "help"
    if _tracer is None or name in LONG_RUNNING:
        return nullcontext()
    return _tracer.start_as_current_span(f"manage.py {name}")


class TraceContextFilter(logging.Filter):
    """Sets `trace_id` and `span_id` (hex) on every record logged while a
    span is current, for the JSON log line; does nothing when traces are off."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _current_span is not None:
            context = _current_span().get_span_context()
            if context.is_valid:
                record.trace_id = format(context.trace_id, "032x")
                record.span_id = format(context.span_id, "016x")
        return True
