"""The one place a lost dependency becomes an answer: 503, Retry-After, one
log line, in the door's own words.

Every exception a request lets escape reaches Django's handler500
(backoffice.views.errors.server_error), from a view or from a middleware
(a session read, a token lookup), so that is where it is decided: the
database (OperationalError, InterfaceError) or the cache (Redis connection
or timeout) unavailable is a 503 the client may retry, not a bug. SCIM
clients get SCIM's error JSON (identity providers retry a 503 and never a
400); the API's paths are rewritten to its JSON by api.middleware; people
get the plain 503 page.
"""

from __future__ import annotations

import json
import logging
import sqlite3

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.template import loader
from django.urls import Resolver404, resolve
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from iam.accesslog import redact_path

logger = logging.getLogger("iam.outage")

RETRY_AFTER = 5
OUTAGES = (
    ((OperationalError, InterfaceError), "database"),
    ((RedisConnectionError, RedisTimeoutError), "cache"),
)
SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
# SQLite says OperationalError for SQL the schema does not match too (a
# migration not run, a typo): a bug to see with its traceback, not an outage.
SQLITE_BUGS = ("no such table", "no such column", "has no column named", "syntax error")


def outage_of(exc: BaseException | None) -> str | None:
    """ "database" or "cache" when `exc` says that dependency is unavailable."""
    what = next((what for types, what in OUTAGES if isinstance(exc, types)), None)
    cause = getattr(exc, "__cause__", None)
    sqlite_bug = isinstance(cause, sqlite3.OperationalError) and any(
        bug in str(cause) for bug in SQLITE_BUGS
    )
    return None if sqlite_bug else what


def logged_path(request) -> str:
    """The path as a log line may show it: the route's pattern in place of
    the values it captured (a password-reset key, an address-change link's
    token), and no line break or control character (a forged line)."""
    path = redact_path(request.path)  # also when it does not resolve (no final slash)
    try:
        match = getattr(request, "resolver_match", None) or resolve(request.path_info)
    except Resolver404:
        match = None
    except Exception:  # noqa: BLE001 - the answer to an outage must not fail on its log line
        match, path = None, "-"
    if match is not None and (match.args or match.kwargs):
        path = "/" + match.route.replace("^", "").replace("$", "")
    return path.encode("unicode_escape").decode("ascii")


def outage_response(request, what: str, exc: BaseException) -> HttpResponse:
    # One line, not a traceback per request while a dependency is down.
    logger.warning(
        "%s unavailable: %s %s: %s", what, request.method, logged_path(request), type(exc).__name__
    )
    if request.path.startswith("/scim/"):
        body = {
            "schemas": [SCIM_ERROR],
            "status": "503",
            "detail": f"The service cannot reach its {what}; try again shortly.",
        }
        response = HttpResponse(json.dumps(body), status=503, content_type="application/scim+json")
    else:
        response = HttpResponse(loader.render_to_string("503.html", {"what": what}), status=503)
    response["Retry-After"] = str(RETRY_AFTER)
    response._has_been_logged = True  # Django would log it again, with the traceback
    return response
