import logging
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, HttpResponseServerError
from django.shortcuts import render
from django.template import loader
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger("iam.outage")
access_logger = logging.getLogger("iam.access")

# What a failed request hit, by the exception it raised: a dependency that is
# down (or too slow) is a 503 the client may retry, not a bug.
OUTAGES = (
    ((OperationalError, InterfaceError), "database"),
    ((RedisConnectionError, RedisTimeoutError), "cache"),
)


def forbidden(request, exception=None):
    """A refusal is routine: one line naming who and what, not the traceback
    Django would log for every PermissionDenied."""
    response = render(request, "403.html", status=403)
    user = getattr(request, "user", None)
    who = f"user {user.pk}" if user is not None and user.is_authenticated else "anonymous"
    access_logger.warning("forbidden: %s %s %s (%s)", who, request.method, request.path, exception)
    response._has_been_logged = True
    return response


def too_many_requests(request, exception=None):
    """allauth's rate limits and ours: say how long to wait (iam.http sets
    the matching Retry-After header)."""
    from accounts.throttle import wait_text

    seconds = getattr(request, "retry_after", 60)
    response = render(request, "429.html", {"wait": wait_text(seconds)}, status=429)
    response["Retry-After"] = str(seconds)
    return response


def not_found(request, exception=None):
    return render(request, "404.html", status=404)


def server_error(request):
    """No context processors here: the database or cache may be what failed."""
    exc = sys.exc_info()[1]
    for types, what in OUTAGES:
        if isinstance(exc, types):
            # One line, not a traceback per request while a dependency is down.
            logger.warning(
                "%s unavailable: %s %s: %s", what, request.method, request.path, type(exc).__name__
            )
            response = HttpResponse(loader.render_to_string("503.html", {"what": what}), status=503)
            response["Retry-After"] = "5"
            response._has_been_logged = True  # Django would log it again, with the traceback
            return response
    return HttpResponseServerError(loader.render_to_string("500.html"))
