"""Re-authentication through the identity provider, for sensitive actions.

accounts.reauth asks for a recent authentication (10 minutes); allauth's
middleware then keeps the interrupted request and sends the browser to the
first method of `AccountAdapter.get_reauthentication_methods`. For a session
that came in through SSO (or an account with no local password or
authenticator), that first method is "Log in again with <NAME>": the
provider is asked for a fresh login, the callback checks auth_time and that
the identity is this user's, records the re-authentication, and carries out
the interrupted request.
"""

from __future__ import annotations

from allauth.account.internal.flows.reauthentication import STATE_SESSION_KEY
from allauth.core.internal.httpkit import deserialize_request
from allauth.core.internal.urlkit import script_aware_resolve
from django.shortcuts import redirect

from accounts.login import login_method
from sso.services import linked_providers


def with_sso_method(request, user, methods: list[dict]) -> list[dict]:
    """allauth's re-authentication methods, with the identity provider's:
    first when this session's way in was SSO or there is no local method,
    else last (an alternative on the password page)."""
    if request is None or not user.is_authenticated:
        return methods
    linked = {p.id: p for p in linked_providers(user)}
    if not linked:
        return methods
    came_in_with = _sso_provider_of_session(request, user)
    provider = linked.get(came_in_with) or next(iter(linked.values()))
    sso = {
        "id": "sso",
        "description": f"Log in again with {provider.name}",
        "url": provider.reauthenticate_url(),
    }
    if came_in_with in linked or not methods:
        return [sso, *methods]
    return [*methods, sso]


def _sso_provider_of_session(request, user) -> str:
    """The provider this session came in through, or ""."""
    method = login_method(request)
    return method.removeprefix("sso:") if method.startswith("sso:") else ""


def resume(request, next_url: str):
    """Carry out the request that asked for re-authentication, as allauth's
    own re-authentication views do: allauth kept a POST in the session; a
    GET is simply visited again."""
    state = request.session.get(STATE_SESSION_KEY)
    if isinstance(state, dict) and "request" in state:
        del request.session[STATE_SESSION_KEY]
        suspended = deserialize_request(state["request"], request)
        if suspended.path == next_url:
            match = script_aware_resolve(suspended.path)
            return match.func(suspended, *match.args, **match.kwargs)
    return redirect(next_url)
