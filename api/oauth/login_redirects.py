"""Where a login goes on to when its `next` is an authorization request.

A person who approved a client before and comes back not logged in is sent
to the login page with `next=/oauth/authorize/?…`. After the login's POST
(or its MFA step's) the browser follows redirects: to the authorization
request, then straight on to the client's redirect URI, with a code, or
with an error the client must hear about. Browsers check that whole chain
against the CSP `form-action` of the page whose form was posted, so the
login pages allow that one origin: the redirect URI the client registered
and the request names (or the client's only one), never anything wider.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from django.urls import reverse

from api.models import Client


def origins_after_login(request, next_url: str) -> list[str]:
    """accounts.extensions.login_redirect_origins for OAuth authorization
    requests: the origin of the registered redirect URI this request would
    send the browser back to, or nothing."""
    try:
        parts = urlsplit(next_url)
    except ValueError:
        return []
    if (parts.scheme or parts.netloc) and parts.netloc != request.get_host():
        return []
    if parts.path != reverse("oauth2_provider:authorize"):
        return []
    query = parse_qs(parts.query)
    client_id = _one(query, "client_id")
    if not client_id or len(client_id) > 100 or not client_id.isprintable():
        return []
    client = Client.objects.filter(client_id=client_id).first()
    if client is None or client.authorization_grant_type != Client.GRANT_AUTHORIZATION_CODE:
        return []
    registered = client.redirect_uris.split()
    if "redirect_uri" not in query:
        # RFC 6749 §3.1.2.3: without redirect_uri, the client's only one.
        uri = registered[0] if len(registered) == 1 else ""
    else:
        asked = _one(query, "redirect_uri") or ""
        uri = asked if asked.isprintable() and client.redirect_uri_allowed(asked) else ""
    target = urlsplit(uri)
    if target.scheme not in client.get_allowed_schemes() or not target.netloc:
        return []
    return [f"{target.scheme}://{target.netloc}"]


def _one(query: dict, name: str) -> str | None:
    """A parameter given once (the toolkit refuses repeated ones)."""
    values = query.get(name)
    return values[0] if values and len(values) == 1 else None
