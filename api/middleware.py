"""Every error on the machine-facing paths is JSON.

Django answers an unknown URL, a method a plain view does not take, a bad
Host header, a database outage (503) or a bug (500) with an HTML page; an API
client would choke on it. This middleware, outside all the others, rewrites
any error response on those paths that is not JSON already into
`{"error": …, "error_description": …}` with the same status, keeping the
headers that matter (Retry-After, WWW-Authenticate, Allow). The consent page
(/oauth/authorize/) is for browsers and keeps its HTML.
"""

import json

from django.http import HttpResponse

from api.errors import CODES

JSON_PATHS = (
    "/api/",
    "/oauth/token/",
    "/oauth/revoke/",
    "/oauth/introspect/",
    "/.well-known/oauth-authorization-server",
)
KEEP = ("Retry-After", "WWW-Authenticate", "Allow", "Cache-Control")
DESCRIPTIONS = {
    404: "There is nothing at this address.",
    405: "This method is not allowed here.",
    500: "Something went wrong on our side; it has been logged.",
    503: "Temporarily unavailable; try again shortly.",
}


class JsonErrorsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code < 400 or not request.path.startswith(JSON_PATHS):
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response
        status = response.status_code
        payload = {
            "error": CODES.get(status, "error"),
            "error_description": DESCRIPTIONS.get(status, response.reason_phrase),
        }
        rewritten = HttpResponse(
            json.dumps(payload), status=status, content_type="application/json"
        )
        for header in KEEP:
            if response.has_header(header):
                rewritten[header] = response[header]
        # Logged once: a response whose cause was logged stays so (iam.request_id).
        rewritten._has_been_logged = getattr(response, "_has_been_logged", False)
        return rewritten
