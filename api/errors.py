"""Errors of the machine-facing doors, always as JSON: `{"error": code,
"error_description": text}` with the right status, never an HTML page, never
a traceback. DRF's exceptions go through `exception_handler`; anything else
(an unknown URL, a 405 from a plain view, a database outage's 503, a bug's
500) is rewritten on the way out by api.middleware."""

from __future__ import annotations

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from accounts.errors import AccessRefused, AccountError
from accounts.inputs import InvalidInput

CODES = {
    400: "invalid_request",
    401: "invalid_token",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    500: "server_error",
    503: "temporarily_unavailable",
}


class Refused(exceptions.APIException):
    """A refusal the access model or a service decided; its text is for people."""

    def __init__(self, detail: str, *, status_code: int, code: str):
        self.status_code = status_code
        super().__init__(detail=detail, code=code)


def from_service(exc: AccountError) -> Refused:
    """accounts' refusals: bad input 400, beyond the caller's rights 403, the
    lock-out guard and other conflicts with the stored state 409."""
    if isinstance(exc, InvalidInput):
        return Refused(str(exc), status_code=400, code="invalid_request")
    if isinstance(exc, AccessRefused) and exc.reason != "last_manager":
        return Refused(str(exc), status_code=403, code="forbidden")
    return Refused(str(exc), status_code=409, code="conflict")


def body(code: str, description: str, **extra) -> dict:
    return {"error": code, "error_description": description, **extra}


def exception_handler(exc, context):
    if isinstance(exc, AccountError):
        exc = from_service(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a bug or an outage: Django's handlers, then api.middleware
    request = context.get("request")
    code = CODES.get(response.status_code, "error")
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    extra = {}
    if isinstance(exc, exceptions.ValidationError):
        extra["fields"] = detail if isinstance(detail, dict) else {"non_field_errors": detail}
        description = "The request is not valid: see fields."
    elif isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        oauth2_error = getattr(getattr(request, "_request", request), "oauth2_error", {}) or {}
        code = oauth2_error.get("error", "invalid_token")
        description = str(
            oauth2_error.get("error_description") or "A valid bearer token is required."
        )
        response.status_code = status.HTTP_401_UNAUTHORIZED
    else:
        if isinstance(exc, Refused | exceptions.PermissionDenied) and exc.get_codes() not in (
            "permission_denied",
            "error",
        ):
            code = exc.get_codes()
        description = str(detail)
    response.data = body(code, description, **extra)
    return response


def problem(status_code: int, description: str = "", **headers) -> Response:
    return Response(
        body(CODES.get(status_code, "error"), description), status=status_code, headers=headers
    )
