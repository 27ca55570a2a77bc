"""Response headers every page owes its reader.

- A logged-in person's pages and exports are theirs alone: `Cache-Control:
  no-store, private` (and the rest of Django's never-cache set), so neither a
  shared proxy nor the browser's back button after logout shows them again.
  Decided by the session cookie, not by loading the user: a response must
  not depend on the database or cache that may be why it is an error page.
- A 429 always says when to come back (`Retry-After`, in seconds): the view
  that refused may set `request.retry_after`; otherwise a minute.
- A 405 that Django left blank (`require_POST` and friends) gets a page, so
  a bookmarked or typed action URL explains itself instead of showing nothing.
"""

from django.conf import settings
from django.template import loader
from django.utils.cache import add_never_cache_headers

DEFAULT_RETRY_AFTER = 60


class ResponseHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code == 405 and not response.content:
            response.content = loader.render_to_string("405.html", request=request)
            response["Content-Type"] = "text/html; charset=utf-8"
        cookie = settings.SESSION_COOKIE_NAME
        if cookie in request.COOKIES or cookie in response.cookies:
            add_never_cache_headers(response)
        if response.status_code == 429 and not response.has_header("Retry-After"):
            response["Retry-After"] = str(getattr(request, "retry_after", DEFAULT_RETRY_AFTER))
        return response
