"""The SAML doors: the assertion consumer service (the IdP's answer,
HTTP-POST binding), single logout (HTTP-Redirect binding) and our SP
metadata. Everything after the answer is checked is sso.views.finish, the
same as for an OpenID provider."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts.audit import Actor, AuditAction, audit
from sso import sessions
from sso.errors import SSOError
from sso.logout_views import logout_refused
from sso.saml import flow, logout, sp
from sso.saml.xml import MAX_DOCUMENT
from sso.views import finish, provider_or_404, reauth_failure_page, sign_in_failed

# Characters of base64 a SAMLResponse may have: a document of MAX_DOCUMENT
# bytes (4 characters for 3), in lines of 76 ending CRLF as some IdPs send
# it, and some. (400 KiB, as it was, cut documents at 300 KiB.)
MAX_RESPONSE = MAX_DOCUMENT * 4 // 3 * 78 // 76 + 1024


@csrf_exempt
@require_POST
def acs(request, provider_id: str):
    """The IdP posts its answer here. The session cookie is SameSite=Lax, so
    the IdP's cross-site POST comes without it: the first POST is answered
    with a page that posts the same fields here again, from our own origin,
    where the browser sends the cookie and the answer can be bound to the
    request this browser made. Nothing changes before that."""
    provider = provider_or_404(provider_id, "saml")
    saml_response = request.POST.get("SAMLResponse", "")
    if len(saml_response) > MAX_RESPONSE:
        return sign_in_failed(
            request,
            provider,
            provider.fail(gettext_noop("the provider's answer is too large."), "saml_malformed"),
        )
    has_session = settings.SESSION_COOKIE_NAME in request.COOKIES
    if not has_session and not request.POST.get("bounced"):
        response = render(
            request,
            "sso/saml_post.html",
            {
                "provider": provider,
                "action": request.path,
                "saml_response": saml_response,
                "relay_state": request.POST.get("RelayState", "")[:80],
            },
        )
        response["Cache-Control"] = "no-store"
        return response
    try:
        entry, claims = flow.complete(request, provider)
    except SSOError as error:
        to = reauth_failure_page(request, provider, getattr(error, "entry", {}))
        return sign_in_failed(request, provider, error, to=to)
    return finish(request, provider, entry, claims)


@never_cache
@require_GET
def slo(request, provider_id: str):
    """Single logout, HTTP-Redirect binding: the IdP's LogoutRequest (it
    ends the sessions it names, then back to the IdP with our answer) or its
    LogoutResponse to ours (the login page then says so)."""
    provider = provider_or_404(provider_id, "saml")
    by = Actor.of(request, label=f"identity provider {provider.id}")
    try:
        incoming = logout.read(request, provider)
    except (logout.Refused, SSOError) as error:
        reason = str(error) if isinstance(error, logout.Refused) else error.reason
        logout_refused(request, provider, by, reason)
        return HttpResponseRedirect(reverse("account_login"))
    if incoming.kind == "response":
        state = request.GET.get("RelayState", "")
        login = reverse("account_login")
        if incoming.success and state:
            return HttpResponseRedirect(f"{login}?{urlencode({'state': state})}")
        return HttpResponseRedirect(login)
    ended = 0
    for index in incoming.session_indexes or ("",):
        ended += sessions.end(
            provider,
            sid=index,
            sub=incoming.name_id,
            by=by,
            reason=AuditAction.SSO_FRONTCHANNEL_LOGOUT.value,
        )
    audit(
        AuditAction.SSO_FRONTCHANNEL_LOGOUT,
        by=by,
        target_label=provider.id,
        details={"provider": provider.id, "binding": "saml-redirect", "ended": ended},
    )
    url = logout.response_url(request, provider, incoming, request.GET.get("RelayState", "")[:80])
    return HttpResponseRedirect(url or reverse("account_login"))


@require_GET
def metadata(request, provider_id: str):
    """Our SP metadata, for the IdP's administrator to import."""
    provider = provider_or_404(provider_id, "saml")
    try:
        document = sp.metadata(request, provider)
    except sp.UnusableKey:
        # `manage.py check` names what is missing (sso.E002).
        raise Http404(_("This provider has no usable SAML signing certificate.")) from None
    return HttpResponse(document, content_type="application/samlmetadata+xml")
