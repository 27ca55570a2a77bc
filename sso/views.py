"""SSO doors: a POST starts a login at the provider, the callback finishes it;
a logged-in user re-authenticates at the provider before a sensitive action."""

import logging
from urllib.parse import urlencode

from allauth.account.adapter import get_adapter
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import throttle
from accounts.audit import Actor, AuditAction, audit
from accounts.login import authenticated_now, complete_login
from accounts.models import User
from accounts.selectors import user_local_credentials
from sso import flows, reauth, sessions, stages
from sso.errors import SSOError, printable
from sso.registry import get_provider
from sso.services import (
    link_by_removing_credentials,
    link_refused,
    linked_providers,
    password_proves_link,
    pending_link_valid,
    reauthenticated_user,
    resolve_login,
)

logger = logging.getLogger("iam.sso")


def provider_or_404(provider_id: str, protocol: str = ""):
    """The configured provider, served by this door (`protocol`: a SAML
    provider has no OpenID callback, an OpenID one no SAML endpoints)."""
    provider = get_provider(provider_id)
    if provider is None or (protocol and provider.protocol != protocol):
        raise Http404(_("No such identity provider."))
    return provider


def _safe_next(request, url: str) -> str:
    ok = url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return url if url and ok else "/"


def sign_in_failed(request, provider, error: SSOError, to: str = ""):
    """A refused sign-in, whatever the door: logged, audited (sso.failed),
    said on the page `to` leads to (the login page by default)."""
    # Reasons and details are made printable where they are built from a
    # provider's answer; once more here, as this is where they reach a log.
    reason, detail = printable(error.reason), printable(error.detail, 200)
    details = {"provider": provider.id, "reason": reason}
    if detail:
        details["provider_said"] = detail
    # Anyone may post to a SAML ACS or call back here: past the rate (per
    # IP) a refusal is still refused but no longer logged or audited, so
    # strangers cannot flood the trail (as the logout doors).
    if throttle.consume(request, "sso_failed") is not None:
        if detail:
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
    provider = provider_or_404(provider_id)
    try:
        url = provider.begin(request, next_url=request.POST.get("next", ""))
    except SSOError as error:
        return sign_in_failed(request, provider, error)
    return HttpResponseRedirect(url)


@login_required
@require_http_methods(["GET", "POST"])
def reauthenticate(request, provider_id: str):
    """ "Confirm it's you": a button that sends the browser to the provider for
    a fresh login; where allauth sends a session that came in through SSO
    when a sensitive action needs a recent authentication."""
    provider = provider_or_404(provider_id)
    if provider.id not in {p.id for p in linked_providers(request.user)}:
        raise Http404(_("No identity of yours at this provider."))
    next_url = _safe_next(request, request.POST.get("next") or request.GET.get("next", ""))
    if request.method == "POST":
        try:
            url = provider.begin(request, next_url=next_url, reauth_user=request.user.pk)
        except SSOError as error:
            return sign_in_failed(
                request, provider, error, to=_reauthenticate_page(provider, next_url)
            )
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
    """The OpenID provider's answer (authorization code flow)."""
    provider = provider_or_404(provider_id, "oidc")
    try:
        entry = flows.take_pending(request, provider, request.GET.get("state"))
    except SSOError as error:
        return sign_in_failed(request, provider, error)
    try:
        claims, id_token = flows.complete(request, provider, entry)
    except SSOError as error:
        return sign_in_failed(
            request, provider, error, to=reauth_failure_page(request, provider, entry)
        )
    return finish(request, provider, entry, claims, id_token)


def reauth_failure_page(request, provider, entry) -> str:
    """Where a failed answer sends the browser: back to "Confirm it's you"
    for a re-authentication (the session untouched), else the login page."""
    if entry.get("reauth") is None or not request.user.is_authenticated:
        return ""
    return _reauthenticate_page(provider, _safe_next(request, entry["next"]))


def finish(request, provider, entry: dict, claims: dict, id_token: str = ""):
    """The end of every SSO sign-in, whatever the protocol: the provider's
    answer was checked and bound to `entry` (this browser's pending sign-in)
    and became `claims`; now the account is found, linked or made (or the
    re-authentication recorded) and the login goes on through its stages."""
    next_url = _safe_next(request, entry["next"])
    if entry.get("reauth") is not None:
        return _reauthenticated(request, provider, entry, next_url, claims, id_token)
    try:
        found = resolve_login(by=Actor.system(request=request), provider=provider, claims=claims)
    except SSOError as error:
        return sign_in_failed(request, provider, error)
    # The provider did MFA (`amr`): our MFA step is skipped and the policy
    # met. Otherwise a user who has MFA here is asked for the code first.
    amr = claims.get("amr")
    mfa_by_idp = isinstance(amr, list) and "mfa" in amr
    if found.pending is not None:
        # An account with local credentials: the link waits for proof, in
        # this browser's session (no token kept: the logout at the provider
        # then goes without an id_token_hint).
        extra = sessions.login_extra(provider, claims, id_token)
        extra.pop("id_token", None)
        request.session[LINK_SESSION_KEY] = {
            **found.pending,
            "session_user": _session_user(request),
            "groups": found.groups,
            "next": next_url,
            "mfa_by_idp": mfa_by_idp,
            "extra": extra,
            "auth_time": _auth_time(claims),
        }
        return redirect("sso:link")
    return complete_login(
        request,
        found.user,
        method=f"sso:{provider.id}",
        mfa_by_idp=mfa_by_idp,
        redirect_url=next_url,
        extra=sessions.login_extra(provider, claims, id_token),
        stage_data={stages.KEY: {"provider": provider.id, "groups": found.groups}},
        authenticated_at=_auth_time(claims),
    )


def _auth_time(claims: dict) -> float | None:
    """When the provider last saw the person authenticate (OpenID auth_time,
    SAML AuthnInstant), if it says: a login its live session answered is no
    fresh proof for the 10-minute rule (accounts.login). 0 (glewlwyd's
    answer whatever happened) says nothing."""
    value = claims.get("auth_time")
    return float(value) if type(value) in (int, float) and value > 0 else None


# --- "Link your account": a first login onto an account with local credentials ---

LINK_SESSION_KEY = "sso_link"


def _session_user(request):
    user = getattr(request, "user", None)
    return user.pk if user is not None and user.is_authenticated else None


def _pending_link(request):
    """This browser's pending link, its provider and account; None when there
    is none (another browser, expired, provider or account gone, or someone
    logged in or out in this browser since: a shared computer's next person
    never finishes the link another person's login left waiting)."""
    pending = request.session.get(LINK_SESSION_KEY)
    if not pending_link_valid(pending) or pending.get("session_user") != _session_user(request):
        request.session.pop(LINK_SESSION_KEY, None)
        return None
    provider = get_provider(pending.get("provider", ""))
    user = User.objects.filter(pk=pending.get("user")).first()
    if provider is None or user is None:
        request.session.pop(LINK_SESSION_KEY, None)
        return None
    return pending, provider, user


def _nothing_to_link(request):
    messages.error(
        request,
        _(
            "There is no sign-in waiting to be linked in this browser (it expired after "
            "10 minutes, or began in another browser). Please log in again."
        ),
    )
    return redirect("account_login")


def _link_page(request, pending, provider, user, *, error: str = "", status: int = 200):
    credentials = user_local_credentials(user)
    return render(
        request,
        "sso/link.html",
        {
            "provider": provider,
            "email": user.email,
            "password_proves": password_proves_link(user),
            "has_password": "password" in credentials,
            "second_factor": any(c in credentials for c in ("totp", "webauthn")),
            "removed": [CREDENTIAL_NAMES[c] for c in credentials if c in CREDENTIAL_NAMES],
            "error": error,
        },
        status=status,
    )


CREDENTIAL_NAMES = {
    "password": gettext_lazy("its password"),
    "totp": gettext_lazy("its authenticator app"),
    "webauthn": gettext_lazy("its security keys and passkeys"),
    "recovery_codes": gettext_lazy("its recovery codes"),
}


@require_GET
def link(request):
    found = _pending_link(request)
    if found is None:
        return _nothing_to_link(request)
    return _link_page(request, *found)


@require_POST
def link_with_password(request):
    """Prove it: the account's own password here, then its second factor in
    the usual MFA step; the link is made when the login completes."""
    found = _pending_link(request)
    if found is None:
        return _nothing_to_link(request)
    pending, provider, user = found
    by = Actor.system(request=request)
    if not password_proves_link(user):
        link_refused(by=by, user=user, provider_id=provider.id, reason="password_not_own")
        return _link_page(
            request,
            *found,
            error=_(
                "This account's password was not chosen through a link mailed to this "
                "address (an administrator set it, or the address changed since), so it "
                "cannot show that the account is yours alone. Link it with the button below "
                "instead: the password is removed, and you log in with %(name)s from now on."
            )
            % {"name": provider.name},
        )
    adapter = get_adapter(request)
    try:
        proven = adapter.authenticate(
            request, email=user.email, password=str(request.POST.get("password", ""))
        )
    except ValidationError as error:  # too many attempts
        return _link_page(request, *found, error=" ".join(error.messages), status=429)
    if proven is None or proven.pk != user.pk:
        return _link_page(request, *found, error=_("That is not this account's password."))
    request.session.pop(LINK_SESSION_KEY, None)
    link = {k: pending[k] for k in ("provider", "issuer", "subject", "email", "extras", "user")}
    link["vouched_by"] = pending.get("vouched_by", "")
    # The account's own second factor is part of the proof, whatever the
    # provider did (its MFA still meets the policy afterwards).
    return _log_in_pending(request, proven, pending, provider, link=link, local_mfa=True)


@require_POST
def link_by_takeover(request):
    """ "This is my account but I don't know its password": link, and every
    local credential of the account goes (sso.services)."""
    found = _pending_link(request)
    if found is None:
        return _nothing_to_link(request)
    pending, provider, _user = found
    request.session.pop(LINK_SESSION_KEY, None)
    try:
        user = link_by_removing_credentials(
            by=Actor.system(request=request), provider=provider, pending=pending
        )
    except SSOError as error:
        return sign_in_failed(request, provider, error)
    return _log_in_pending(request, user, pending, provider)


def _log_in_pending(request, user, pending, provider, *, link=None, local_mfa=False):
    """The pending SSO login goes on through the usual stages (MFA, then
    sso.stages: `link` made if given, the mapped groups applied)."""
    completion = {"provider": provider.id, "groups": pending["groups"]}
    if link is not None:
        completion["link"] = link
    stage_data = {stages.KEY: completion}
    if local_mfa:
        stage_data["local_mfa"] = True
    return complete_login(
        request,
        user,
        method=f"sso:{provider.id}",
        mfa_by_idp=bool(pending.get("mfa_by_idp")),
        redirect_url=pending.get("next") or "/",
        extra=pending.get("extra") or {},
        stage_data=stage_data,
        authenticated_at=pending.get("auth_time"),
    )


@require_POST
def link_cancel(request):
    """ "This is not my account": nothing is linked, and the operator finds in
    the audit trail that an account holds an address someone else vouched for."""
    found = _pending_link(request)
    request.session.pop(LINK_SESSION_KEY, None)
    if found is not None:
        _pending, provider, user = found
        link_refused(
            by=Actor.system(request=request),
            user=user,
            provider_id=provider.id,
            reason="not_my_account",
        )
    messages.info(request, _("Nothing was linked."))
    return redirect("account_login")


def _reauthenticated(request, provider, entry: dict, next_url: str, claims: dict, id_token: str):
    """The end of a re-authentication: recorded for this same user, then the
    interrupted action is carried out. Any failure goes back to the
    "Confirm it's you" page, the session untouched."""
    try:
        user = reauthenticated_user(
            request=request, provider=provider, claims=claims, user_id=entry["reauth"]
        )
    except SSOError as error:
        to = _reauthenticate_page(provider, next_url) if request.user.is_authenticated else ""
        return sign_in_failed(request, provider, error, to=to)
    authenticated_now(request, user)
    sessions.renewed(request, provider, claims, id_token)
    # The interrupted request runs within this one. The user object this
    # request came with carries the access stamp of before the role sync
    # (accounts.access): load it anew.
    request.user = User.objects.get(pk=user.pk)
    return reauth.resume(request, next_url)
