"""A SAML sign-in from start to end, in the shape sso.views expects of any
provider: `begin` sends the browser to the IdP with a signed AuthnRequest
(ForceAuthn for a re-authentication) and keeps its id in this browser's
session; `complete` checks the IdP's answer (sso.saml.response), binds it to
that request (InResponseTo) and spends the assertion id."""

from __future__ import annotations

import time

from django.utils.translation import gettext_noop

from sso import flows
from sso.errors import SSOError
from sso.models import Identity
from sso.saml import binding, idp, response, sp


def begin(request, provider, next_url: str = "", reauth_user=None) -> str:
    found = idp.idp(provider)
    key, _cert = provider.signing_key()
    request_id = sp.new_id()
    xml = sp.authn_request(
        request,
        provider,
        request_id=request_id,
        destination=found["sso_url"],
        force=reauth_user is not None,
    )
    flows.remember(request, request_id, provider, next_url=next_url, reauth_user=reauth_user)
    query = binding.signed_query("SAMLRequest", binding.encode(xml), "", key)
    endpoint = found["sso_url"]
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


def complete(request, provider) -> tuple[dict, dict]:
    """(pending sign-in entry, claims) for the SAMLResponse posted here."""
    found = idp.idp(provider)
    data = response.decode_post(provider, request.POST.get("SAMLResponse"))
    checked = response.check(
        provider,
        found,
        data,
        acs_url=sp.acs_url(request, provider),
        entity_id=sp.entity_id(request, provider),
    )
    # Spent before the binding, so a second post of the same answer is
    # named a replay (in the audit trail), whatever else is wrong with it.
    response.use_once(provider, checked)
    entry = _pending(request, provider, checked.in_response_to)
    try:
        _bound(request, provider, entry, checked)
    except SSOError as error:
        error.entry = entry  # a failed re-authentication goes back to its page
        raise
    return entry, checked.claims


def _bound(request, provider, entry: dict, checked) -> None:
    """What the answer must also be for the sign-in it answers."""
    if not checked.in_response_to:
        _not_into_someone_elses_session(request, provider, checked.claims)
    if entry.get("reauth") is not None:
        # ForceAuthn was asked: the IdP must say it authenticated the person
        # after our request (an IdP that ignores ForceAuthn answers with its
        # older session's instant).
        started = entry["at"] - response.CLOCK_SKEW.total_seconds()
        if checked.authn_instant is None or checked.authn_instant.timestamp() < started:
            raise provider.fail(
                gettext_noop(
                    "the provider did not ask for your password again. Please try again; "
                    "an administrator should check that it honours ForceAuthn."
                ),
                "saml_not_fresh",
            )


def _not_into_someone_elses_session(request, provider, claims: dict) -> None:
    """An unsolicited answer is tied to no browser: whoever holds one can
    post it into anyone's (login CSRF, the price of IDP_INITIATED). It may
    log in a browser nobody is logged in to, or the same person again, but
    never turn a logged-in session into another person's."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return
    linked = Identity.objects.filter(
        provider=provider.id, issuer=claims["iss"], subject=claims["sub"], user=user
    ).exists()
    if not linked:
        raise provider.fail(
            gettext_noop(
                "the provider sent a sign-in for someone else while you are logged in "
                "here. Log out first to log in as another person."
            ),
            "saml_unsolicited_logged_in",
        )


def _pending(request, provider, in_response_to: str) -> dict:
    if not in_response_to:
        if not provider.idp_initiated:
            raise provider.fail(
                gettext_noop(
                    "the provider sent a sign-in nobody asked for here. Please start from "
                    "the login page."
                ),
                "saml_unsolicited",
            )
        return {"provider": provider.id, "next": "/", "at": int(time.time()), "reauth": None}
    pending = request.session.get(flows.SESSION_KEY, {})
    entry = pending.pop(in_response_to, None)
    request.session[flows.SESSION_KEY] = pending
    if entry is None or entry.get("provider") != provider.id:
        raise provider.fail(
            gettext_noop(
                "this answer does not belong to a sign-in started in this browser (expired, "
                "used already, or from another browser). Please try again."
            ),
            "saml_in_response_to",
        )
    if entry["at"] < time.time() - flows.STATE_TTL:
        raise provider.fail(
            gettext_noop("the sign-in took too long. Please try again."), "state_expired"
        )
    return entry
