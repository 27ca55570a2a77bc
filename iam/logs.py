"""Log lines an operator can join to the audit trail (README "Logs and request ids").

Every line says which request (or command run, or worker task) wrote it:
its request id, the same one the response's `X-Request-ID` header carries
and the audit events of that request store (accounts.audit). The id lives
in a context variable for the length of the request (iam.request_id), of a
management command's run (iam.commands) or of a worker task (`connect`, below).

Two formatters, chosen by `IAM_LOG_FORMAT` in iam/settings.py:
- `TextFormatter` (the default): the usual line, with the request id.
- `JsonFormatter`: one JSON object a line: time, level, logger, message,
  request_id, actor, route, method, status, and trace_id/span_id when a
  tracing filter put them on the record.

Both are plain `logging.Formatter`s that read no Django settings, so
granian's own logging configuration can use them too (deploy/).
The actor is an id or a client's name, never more: "user:12",
"client:shop-sync", "scim:entra", "anonymous"; outside a request the
command ("cli:createuser") or the task ("task:deliver").
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

# The request id of what runs now, and the request itself (for the actor,
# route and method of the lines it writes).
current_request_id: ContextVar[str | None] = ContextVar("iam_request_id", default=None)
current_request: ContextVar[object | None] = ContextVar("iam_request", default=None)
# Who acts outside a request: "cli:<command>", "task:<task name>".
current_actor: ContextVar[str | None] = ContextVar("iam_actor", default=None)

# What an id taken from a proxy may look like: bounded, and nothing that
# could break a log line, a CSV cell or a URL (no space, quote, control or
# non-ASCII character).
REQUEST_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}"
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)


def new_request_id() -> str:
    return uuid.uuid4().hex


def valid_request_id(value: str | None) -> str | None:
    """`value` when it is a safe id, else None."""
    if value and _REQUEST_ID.fullmatch(value):
        return value
    return None


def request_id() -> str:
    """The id of what runs now ("" outside any request, command or task)."""
    return current_request_id.get() or ""


# --- What a line says about its request ---------------------------------------


def log_context() -> dict:
    """The request id and actor of now, for a line written later (an audit
    line, once its transaction commits): `logger.info(..., extra=...)`."""
    return {
        "request_id": current_request_id.get(),
        "actor": current_actor.get() or actor_of(current_request.get()) or None,
    }


def _loaded_user(request):
    """The request's user if it was already loaded: a log line must never
    cost a query (nor fail because the database is what is down)."""
    from django.utils.functional import empty

    user = request.__dict__.get("user")
    wrapped = getattr(user, "_wrapped", user)
    if wrapped is empty:  # not loaded yet (AuthenticationMiddleware's lazy user)
        wrapped = request.__dict__.get("_cached_user")
    return wrapped


def actor_of(request) -> str:
    if request is None:
        return ""
    scim = getattr(request, "scim_client", None)
    if scim is not None:
        return f"scim:{scim.name}"
    user = _loaded_user(request)
    user_id = getattr(user, "pk", None) if getattr(user, "is_authenticated", False) else None
    client = getattr(getattr(request, "auth", None), "application", None)
    if client is not None:
        who = f"client:{client.name}"
        return f"user:{user_id} via {who}" if user_id is not None else who
    return f"user:{user_id}" if user_id is not None else "anonymous"


# The health endpoints are answered before URL resolution (iam.health).
_UNRESOLVED_ROUTES = {"/healthz": "healthz", "/readyz": "readyz", "/metrics": "metrics"}


def route_of(request) -> str:
    """The URL's name (never the raw path, which may hold ids or keys)."""
    if request is None:
        return ""
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match.view_name
    return _UNRESOLVED_ROUTES.get(getattr(request, "path", ""), "")


def _context(record: logging.LogRecord) -> dict:
    """The request facts of a record: Django's own request lines carry their
    request (written after the request's context ended); others take the
    context of the code that logged them. A line is never lost to them."""
    try:
        return _request_facts(record)
    except Exception:  # noqa: BLE001 - the line still goes out, with what is sure
        return dict.fromkeys(("actor", "route", "method", "status")) | {
            "request_id": current_request_id.get()
        }


def _request_facts(record: logging.LogRecord) -> dict:
    rid = getattr(record, "request_id", None)
    request = getattr(record, "request", None)
    if request is not None and hasattr(request, "META"):
        rid = rid or getattr(request, "request_id", None)
    else:
        request = current_request.get()
    return {
        "request_id": rid or current_request_id.get(),
        "actor": getattr(record, "actor", None) or current_actor.get() or actor_of(request) or None,
        "route": getattr(record, "route", None) or route_of(request) or None,
        "method": getattr(request, "method", None),
        "status": getattr(record, "status", None) or getattr(record, "status_code", None),
    }


_UNSET = object()


class TextFormatter(logging.Formatter):
    """The text line, with the request id (or "-") after the logger's name."""

    def __init__(self, fmt=None, datefmt=None, style="%", validate=True):
        fmt = fmt or "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
        super().__init__(fmt, datefmt, style, validate)

    def format(self, record: logging.LogRecord) -> str:
        # Set for this format only: the record's other handlers (JSON) see it as it came.
        saved = record.__dict__.get("request_id", _UNSET)
        record.request_id = _context(record)["request_id"] or "-"
        try:
            return super().format(record)
        finally:
            if saved is _UNSET:
                del record.request_id
            else:
                record.request_id = saved


# granian's access records: these fields of its dict (iam.accesslog has
# already taken the secrets out of it).
_ACCESS_FIELDS = ("addr", "method", "path", "protocol", "status", "dt_ms")


class JsonFormatter(logging.Formatter):
    """One JSON object a line. Keys are always present (null when unknown)
    but for trace_id/span_id, exception and granian's access fields."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(self.fields(record), ensure_ascii=False, default=str)

    def fields(self, record: logging.LogRecord) -> dict:
        context = _context(record)
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **context,
        }
        duration = getattr(record, "duration_ms", None)
        if duration is not None:
            line["duration_ms"] = duration
        trace = getattr(record, "trace_id", None) or getattr(record, "otelTraceID", None)
        span = getattr(record, "span_id", None) or getattr(record, "otelSpanID", None)
        if trace and str(trace).strip("0"):  # OpenTelemetry writes "0" outside a span
            line["trace_id"] = str(trace)
            if span and str(span).strip("0"):
                line["span_id"] = str(span)
        if record.name == "granian.access" and isinstance(record.args, dict):
            line.update({k: record.args[k] for k in _ACCESS_FIELDS if k in record.args})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return line


# --- Ids for worker tasks (command runs: iam.commands) ------------------------


# The tokens to undo when a task finishes, per thread (the tests' immediate
# backend runs tasks in the request's thread).
_tasks = threading.local()


def _task_started(sender, task_result, **kwargs) -> None:
    """A worker task's own id: the task's (the mail queue lists it)."""
    rid = valid_request_id(str(task_result.id)) or new_request_id()
    name = getattr(task_result.task, "name", "") or "task"
    stack = _tasks.__dict__.setdefault("stack", [])
    stack.append((current_request_id.set(rid), current_actor.set(f"task:{name}")))


def _task_finished(sender, task_result, **kwargs) -> None:
    stack = _tasks.__dict__.get("stack")
    if stack:
        rid, actor = stack.pop()
        # A token set in another context: nothing of ours to undo here.
        with contextlib.suppress(ValueError):
            current_actor.reset(actor)
            current_request_id.reset(rid)


def connect() -> None:
    """Called once at start-up (accounts.apps)."""
    from django.conf import settings
    from django_tasks.signals import task_finished, task_started

    if settings.IAM_LOG_FORMAT == "json":
        logging.captureWarnings(True)  # Python's warnings as JSON lines too, not bare text
    task_started.connect(_task_started, dispatch_uid="iam.logs.task_started")
    task_finished.connect(_task_finished, dispatch_uid="iam.logs.task_finished")
