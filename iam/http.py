"""Response headers every page owes its reader.

- A logged-in person's pages and exports are theirs alone: `Cache-Control:
  no-store, private` (and the rest of Django's never-cache set), so neither a
  shared proxy nor the browser's back button after logout shows them again.
- A 429 always says when to come back (`Retry-After`, in seconds): the view
  that refused may set `request.retry_after`; otherwise a minute.
"""

from django.utils.cache import add_never_cache_headers

DEFAULT_RETRY_AFTER = 60


class ResponseHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            add_never_cache_headers(response)
        if response.status_code == 429 and not response.has_header("Retry-After"):
            response["Retry-After"] = str(getattr(request, "retry_after", DEFAULT_RETRY_AFTER))
        return response
