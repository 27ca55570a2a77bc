"""Every response carries `X-Request-ID`, and every log line and audit event
of its request the same id (iam.logs, accounts.audit).

The id is the one a trusted proxy sent (`IAM_TRUSTED_PROXIES`, judged as
`X-Forwarded-For` is judged: iam.proxies) when it is a safe token, else
a new one: a client cannot choose the id its requests are filed under. The
same for the W3C trace context (`traceparent`, `tracestate`, `baggage`): a
proxy's trace goes on (README "Traces"), a client's is dropped before the
tracing middleware reads it, so it can neither pick the trace id of its log
lines nor turn its own sampling off. The
middleware is the first of all, so the health endpoints and error pages
carry it too, and it writes the request's line in the log (`iam.request`:
method, route, status, duration), but for the probes of /healthz, /readyz
and /metrics, which granian's access log has already.

A 503 is logged once: by whoever knew its cause (iam.health, the outage
handler) or else here at WARNING, never again by `django.request` at ERROR
(a database outage is no bug; 370 ERROR lines of /readyz probes hid the
real errors).
"""

from __future__ import annotations

import logging
import time

from iam.logs import (
    current_request,
    current_request_id,
    new_request_id,
    route_of,
    valid_request_id,
)
from iam.proxies import from_trusted_proxy, trusted_proxies

logger = logging.getLogger("iam.request")
HEADER = "X-Request-ID"
QUIET_PATHS = {"/healthz", "/readyz", "/metrics"}
TRACE_CONTEXT = ("HTTP_TRACEPARENT", "HTTP_TRACESTATE", "HTTP_BAGGAGE")


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.trusted = trusted_proxies()

    def __call__(self, request):
        started = time.perf_counter()
        rid = None
        if from_trusted_proxy(request, self.trusted):
            rid = valid_request_id(request.headers.get(HEADER))
        else:
            for key in TRACE_CONTEXT:
                request.META.pop(key, None)
        rid = rid or new_request_id()
        request.request_id = rid
        id_token = current_request_id.set(rid)
        request_token = current_request.set(request)
        try:
            response = self.get_response(request)
            response[HEADER] = rid
            self._log(request, response, started)
            return response
        finally:
            current_request.reset(request_token)
            current_request_id.reset(id_token)

    def _log(self, request, response, started) -> None:
        status = response.status_code
        unlogged_outage = status == 503 and not getattr(response, "_has_been_logged", False)
        if unlogged_outage:
            response._has_been_logged = True  # this line instead of django.request's ERROR
        elif request.path in QUIET_PATHS:
            return
        duration = round((time.perf_counter() - started) * 1000, 1)
        route = route_of(request) or "-"
        logger.log(
            logging.WARNING if unlogged_outage else logging.INFO,
            "%s %s %s %.1fms",
            request.method,
            route,
            status,
            duration,
            extra={"status": status, "duration_ms": duration, "route": route},
        )
