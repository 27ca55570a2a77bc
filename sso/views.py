"""SSO doors: a POST starts a login at the provider, the callback finishes it;
a logged-in user re-authenticates at the provider before a sensitive action."""

import logging
from urllib.parse import urlencode

from allauth.account.adapter import get_adapter
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.audit import Actor, AuditAction, audit
from accounts.login import authenticated_now, complete_login
from accounts.models import User
from sso import flows, reauth, sessions
from sso.errors import SSOError, printable
from sso.registry import get_provider
from sso.services import linked_providers, reauthenticated_user, resolve_user

logger = logging.getLogger("iam.sso")


def _provider_or_404(provider_id: str):
    provider = get_provider(provider_id)
    if provider is None:
        raise Http404("No such identity provider.")
    return provider


def _safe_next(request, url: str) -> str:
    ok = url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return url if url and ok else "/"


def _failed(request, provider, error: SSOError, to: str = ""):
    # Reasons and details are made printable where they are built from a
    # provider's answer; once more here, as this is where they reach a log.
    reason, detail = printable(error.reason), printable(error.detail, 200)
    details = {"provider": provider.id, "reason": reason}
    if detail:
        details["provider_said"] = detail
        logger.warning("sso %s failed: %s (provider said: %s)", provider.id, reason, detail)
    else:
        logger.warning("sso %s failed: %s", provider.id, reason)
    audit(
        AuditAction.SSO_FAILED,
        by=Actor.of(request),
        target_label=provider.id,
        success=False,
        details=details,
    )
    messages.error(request, error.message)
    return redirect(to or "account_login")


def _reauthenticate_page(provider, next_url: str) -> str:
    return f"{provider.reauthenticate_url()}?{urlencode({'next': next_url})}"


@require_POST
def login(request, provider_id: str):
    provider = _provider_or_404(provider_id)
    try:
        url = flows.begin(request, provider, next_url=request.POST.get("next", ""))
    except SSOError as error:
        return _failed(request, provider, error)
    return HttpResponseRedirect(url)


@login_required
@require_http_methods(["GET", "POST"])
def reauthenticate(request, provider_id: str):
    """ "Confirm it's you": a button that sends the browser to the provider for
    a fresh login; where allauth sends a session that came in through SSO
    when a sensitive action needs a recent authentication."""
    provider = _provider_or_404(provider_id)
    if provider.id not in {p.id for p in linked_providers(request.user)}:
        raise Http404("No identity of yours at this provider.")
    next_url = _safe_next(request, request.POST.get("next") or request.GET.get("next", ""))
    if request.method == "POST":
        try:
            url = flows.begin(request, provider, next_url=next_url, reauth_user=request.user.pk)
        except SSOError as error:
            return _failed(request, provider, error, to=_reauthenticate_page(provider, next_url))
        return HttpResponseRedirect(url)
    methods = get_adapter(request).get_reauthentication_methods(request.user)
    alternatives = [
        {"description": m["description"], "url": f"{m['url']}?{urlencode({'next': next_url})}"}
        for m in methods
        if m["id"] != "sso"
    ]
    response = render(
        request,
        "sso/reauthenticate.html",
        {"provider": provider, "next": next_url, "alternatives": alternatives},
    )
    # The button's POST is answered with a redirect to the provider.
    response._csp_update = {"form-action": provider.form_action_origins()}
    return response


@require_GET
def callback(request, provider_id: str):
    provider = _provider_or_404(provider_id)
    try:
        entry = flows.take_pending(request, provider, request.GET.get("state"))
    except SSOError as error:
        return _failed(request, provider, error)
    next_url = _safe_next(request, entry["next"])
    if entry.get("reauth") is not None:
        return _reauthenticated(request, provider, entry, next_url)
    try:
        claims, id_token = flows.complete(request, provider, entry)
        user = resolve_user(by=Actor.system(request=request), provider=provider, claims=claims)
    except SSOError as error:
        return _failed(request, provider, error)
    # The provider did MFA (`amr`): our MFA step is skipped and the policy
    # met. Otherwise a user who has MFA here is asked for the code first.
    amr = claims.get("amr")
    return complete_login(
        request,
        user,
        method=f"sso:{provider.id}",
        mfa_by_idp=isinstance(amr, list) and "mfa" in amr,
        redirect_url=next_url,
        extra=sessions.login_extra(provider, claims, id_token),
    )


def _reauthenticated(request, provider, entry: dict, next_url: str):
    """The end of a re-authentication: recorded for this same user, then the
    interrupted action is carried out. Any failure goes back to the
    "Confirm it's you" page, the session untouched."""
    try:
        claims, id_token = flows.complete(request, provider, entry)
        user = reauthenticated_user(
            request=request, provider=provider, claims=claims, user_id=entry["reauth"]
        )
    except SSOError as error:
        to = _reauthenticate_page(provider, next_url) if request.user.is_authenticated else ""
        return _failed(request, provider, error, to=to)
    authenticated_now(request, user)
    sessions.renewed(request, provider, claims, id_token)
    # The interrupted request runs within this one. The user object this
    # request came with carries the access stamp of before the role sync
    # (accounts.access): load it anew.
    request.user = User.objects.get(pk=user.pk)
    return reauth.resume(request, next_url)
