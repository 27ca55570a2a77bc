"""django-csp's middleware with the header string built once.

django-csp rebuilds the same policy string for every response (about 5 % of a
warm dashboard view's CPU, cProfile). Our policy has no nonce, so a response
without per-view overrides always gets the same string; only those with
overrides (the login page widens form-action to the SSO providers) are built
per response, by django-csp itself.
"""

from functools import cached_property

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject
from csp.middleware import CSPMiddleware as BaseCSPMiddleware
from csp.utils import build_policy
from django.conf import settings

_PER_RESPONSE = (
    "_csp_config",
    "_csp_update",
    "_csp_replace",
    "_csp_config_ro",
    "_csp_update_ro",
    "_csp_replace_ro",
    "_csp_exempt",
    "_csp_exempt_ro",
)


class CSPMiddleware(BaseCSPMiddleware):
    @cached_property
    def _static_headers(self) -> dict[str, str]:
        headers = {HEADER: build_policy(), HEADER_REPORT_ONLY: build_policy(report_only=True)}
        return {name: value for name, value in headers.items() if value}

    def process_response(self, request, response):
        if (
            getattr(request, "_csp_nonce", None) is not None
            or any(hasattr(response, name) for name in _PER_RESPONSE)
            or (settings.DEBUG and response.status_code in (404, 500))
            or self._excluded(request)
        ):
            return super().process_response(request, response)
        for name, value in self._static_headers.items():
            if name not in response:
                response[name] = value
        # As django-csp does: a nonce asked for after the header is written is an error.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response

    @staticmethod
    def _excluded(request) -> bool:
        for setting in ("CONTENT_SECURITY_POLICY", "CONTENT_SECURITY_POLICY_REPORT_ONLY"):
            prefixes = (getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES")
            if prefixes and request.path_info.startswith(tuple(prefixes)):
                return True
        return False
