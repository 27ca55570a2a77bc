import logging
import sys

from django.http import HttpResponseServerError
from django.shortcuts import render
from django.template import loader

from iam.outages import outage_of, outage_response

access_logger = logging.getLogger("iam.access")


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
    """No context processors here: the database or cache may be what failed
    (iam.outages answers that)."""
    exc = sys.exc_info()[1]
    what = outage_of(exc)
    if what is not None:
        return outage_response(request, what, exc)
    return HttpResponseServerError(loader.render_to_string("500.html"))
