"""SSO doors: a POST starts a login at the provider, the callback finishes it."""

import logging

from allauth.account.adapter import get_adapter
from allauth.account.internal.flows.login import perform_login, record_authentication
from allauth.account.models import Login
from django.contrib import messages
from django.contrib.auth import login as django_login
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from accounts.adapter import SESSION_LOGIN_METHOD, session_started
from accounts.audit import audit
from accounts.middleware import SESSION_MFA_BY_IDP
from sso import flows
from sso.errors import SSOError, printable
from sso.registry import get_provider
from sso.services import resolve_user

logger = logging.getLogger("iam.sso")
BACKEND = "accounts.backends.EmailBackend"


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


def _failed(request, provider, error: SSOError):
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
        "sso.failed",
        request=request,
        target_label=provider.id,
        success=False,
        details=details,
    )
    messages.error(request, error.message)
    return redirect("account_login")


@require_POST
def login(request, provider_id: str):
    provider = _provider_or_404(provider_id)
    try:
        url = flows.begin(request, provider, next_url=request.POST.get("next", ""))
    except SSOError as error:
        return _failed(request, provider, error)
    return HttpResponseRedirect(url)


@require_GET
def callback(request, provider_id: str):
    provider = _provider_or_404(provider_id)
    try:
        claims, next_url = flows.complete(request, provider)
        user = resolve_user(request=request, provider=provider, claims=claims)
    except SSOError as error:
        return _failed(request, provider, error)
    record_authentication(request, user, "sso", provider=provider.id)
    amr = claims.get("amr")
    if isinstance(amr, list) and "mfa" in amr:
        # The provider did MFA: log in now, and the MFA policy is satisfied.
        user.backend = BACKEND
        django_login(request, user)
        request.session[SESSION_MFA_BY_IDP] = True
        session_started(request, user, method=f"sso:{provider.id}")
        get_adapter(request).add_message(
            request, messages.SUCCESS, "account/messages/logged_in.txt", {"user": user}
        )
        return redirect(_safe_next(request, next_url))
    # Otherwise allauth's login stages run as for a password login: a user who
    # has MFA here is asked for the code before the session is logged in.
    request.session[SESSION_LOGIN_METHOD] = f"sso:{provider.id}"
    return perform_login(request, Login(user=user, redirect_url=_safe_next(request, next_url)))
