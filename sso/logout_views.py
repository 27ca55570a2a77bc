"""The provider's side of single logout: its back-channel call (a signed
logout token), its front-channel iframe (iss and sid), and our page between
a logout here and the provider's logout page."""

from __future__ import annotations

import logging

from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts import throttle
from accounts.audit import Actor, AuditAction, audit
from sso import logout, metadata, sessions, tokens
from sso.errors import SSOError, printable
from sso.views import provider_or_404

logger = logging.getLogger("iam.sso")

MAX_LOGOUT_TOKEN = 16 * 1024  # characters
# A logout POST is one form field: a larger body is refused unread (Django
# caps form fields, not multipart files, which it would spool to disk).
MAX_LOGOUT_BODY = 64 * 1024  # bytes


def _no_store(response):
    response["Cache-Control"] = "no-store"
    return response


@never_cache
@require_GET
def continue_logout(request, provider_id: str):
    """After our logout: on to the provider's logout page (a page, not a
    redirect: see sso.logout). A link that is not ours or too old lands on
    the login page."""
    provider_or_404(provider_id)
    url = logout.provider_logout_url(request.GET.get("to"))
    if url is None:
        return HttpResponseRedirect(reverse("account_login"))
    return _no_store(render(request, "sso/logout.html", {"url": url}))


@csrf_exempt
@require_POST
def backchannel_logout(request, provider_id: str):
    """OpenID Connect Back-Channel Logout 1.0: the provider's server posts a
    signed logout token; the sessions it names end on every app server. No
    session and no CSRF token here: the token's signature is the proof."""
    provider = provider_or_404(provider_id, "oidc")
    # The provider is no operator: it ends the sessions it names, nothing else.
    by = Actor.of(request, label=f"identity provider {provider.id}")
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = MAX_LOGOUT_BODY + 1
    if length > MAX_LOGOUT_BODY:
        body = {"error": "invalid_request", "error_description": "The body is too large."}
        return _no_store(JsonResponse(body, status=413))
    token = request.POST.get("logout_token", "")
    try:
        if len(token) > MAX_LOGOUT_TOKEN:
            raise provider.fail("the logout token is too large.", "too_large")
        claims = tokens.validate_logout_token(provider, token)
    except SSOError as error:
        # Past the rate, 429 (see logout_refused).
        if not logout_refused(request, provider, by, error.reason):
            response = JsonResponse({"error": "slow_down"}, status=429)
            response["Retry-After"] = str(throttle.retry_after("sso_logout_refused"))
            return _no_store(response)
        body = {"error": "invalid_request", "error_description": error.message}
        return _no_store(JsonResponse(body, status=400))
    ended = sessions.end(
        provider,
        sid=claims.get("sid") or "",
        sub=claims.get("sub") or "",
        by=by,
        reason=AuditAction.SSO_BACKCHANNEL_LOGOUT.value,
    )
    audit(
        AuditAction.SSO_BACKCHANNEL_LOGOUT,
        by=by,
        target_label=provider.id,
        details={"provider": provider.id, "by_sid": bool(claims.get("sid")), "ended": ended},
    )
    return _no_store(JsonResponse({}, status=200))


def logout_refused(request, provider, by, reason: str) -> bool:
    """A provider's logout message we refused (a back-channel token, a SAML
    LogoutRequest), logged and audited. Anyone may send one: past the rate
    (per IP) it is neither, so strangers cannot flood the trail; False then."""
    if throttle.consume(request, "sso_logout_refused") is None:
        return False
    reason = printable(reason)
    logger.warning("sso %s: logout message refused: %s", provider.id, reason)
    audit(
        AuditAction.SSO_LOGOUT_TOKEN_REFUSED,
        by=by,
        target_label=provider.id,
        success=False,
        details={"provider": provider.id, "reason": reason},
    )
    return True


@xframe_options_exempt
@require_GET
def frontchannel_logout(request, provider_id: str):
    """OpenID Connect Front-Channel Logout 1.0: the provider's logout page
    loads this in an iframe with its issuer and the session id; the session
    that sid names ends. The only page the provider may frame. Entra ID sends
    `sid` without `iss`: the provider is already the one in our URL (a sid is
    looked up among its sessions only), and an `iss` that is sent must be its
    issuer.

    Only for a provider the operator switched it on for
    (IAM_SSO_<ID>_FRONTCHANNEL, default false); otherwise a 404, as for an
    unknown provider: it is an anonymous cross-site GET."""
    provider = provider_or_404(provider_id, "oidc")
    if not provider.frontchannel:
        raise Http404(_("No such identity provider."))
    iss, sid = request.GET.get("iss"), request.GET.get("sid", "")
    if "\x00" in (iss or "") + sid:
        # No issuer or sid holds one (PostgreSQL could not even look it up).
        return _no_store(render(request, "400.html", status=400))
    ended = 0
    if sid and (iss is None or _is_issuer(provider, iss)):
        by = Actor.of(request, label=f"identity provider {provider.id}")
        ended = sessions.end(
            provider, sid=sid[:255], by=by, reason=AuditAction.SSO_FRONTCHANNEL_LOGOUT.value
        )
    # Unauthenticated: only a call that ended something is audited, or any
    # stranger could fill the trail with made-up sids.
    if ended:
        audit(
            AuditAction.SSO_FRONTCHANNEL_LOGOUT,
            by=by,
            target_label=provider.id,
            details={"provider": provider.id, "ended": ended},
        )
    response = render(
        request,
        "sso/frontchannel_logout.html",
    )
    response._csp_replace = {"frame-ancestors": provider.form_action_origins() or ["'none'"]}
    return _no_store(response)


def _is_issuer(provider, iss: str) -> bool:
    """`iss` is this provider's issuer (for a multi-tenant Entra ID, with
    one of the allowed tenants in it)."""
    try:
        issuer = metadata.discovery(provider).get("issuer") or ""
    except SSOError:
        return False
    if "{tenantid}" in issuer:
        tenants = getattr(provider, "allowed_tenants", set())
        return any(iss == issuer.replace("{tenantid}", t) for t in tenants)
    return bool(iss) and iss == issuer
