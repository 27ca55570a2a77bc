"""Who a token acts as, and within what: the API's principal.

A token acts as its account (the person who logged in, for the
authorization-code and password grants; the client's own service account,
for client credentials) *within a cap*, read at every use:

    cap = the resources the token's scopes name
          ∩ the resources the client's scopes name now (its ceiling: an
            admin who narrows them narrows every token it holds, and those
            its refresh tokens give)
          ∩ what the client's secret holder holds now (client credentials)

The holder is whoever created the client or last replaced its secret; the
command line (the operator) sets no holder cap; a holder who is blocked or
deleted leaves the cap empty. The cap rides on the `Actor` (`Actor.cap`), so
reads (api.permissions) and writes (the services' `access_write`) bound the
token the same way, in one place: account ∩ cap. The actor also names the
client, so every audit row an API action writes names it.
"""

from __future__ import annotations

from dataclasses import replace

from accounts.access import permissions
from accounts.audit import Actor
from accounts.models import User
from api import scopes


def holder_permissions_apply(client) -> bool:
    """A client-credentials client whose secret a person holds (not the operator)."""
    return (
        client is not None
        and client.authorization_grant_type == client.GRANT_CLIENT_CREDENTIALS
        and not client.secret_by_operator
    )


def holder_permissions(client) -> frozenset[str] | None:
    """What a client-credentials client's secret holder holds now (None:
    no holder cap, the operator holds the secret or the client acts for
    people, who log in themselves)."""
    if not holder_permissions_apply(client):
        return None
    holder = User.objects.filter(pk=client.secret_holder_id).first()
    if holder is None or not holder.is_active:
        return frozenset()  # blocked or deleted: the secret carries nothing
    return permissions(holder)


def secret_refused(client) -> str:
    """Why a client-credentials client's secret carries nothing now (the
    reason for the audit trail; "" while it carries something): its service
    account is blocked, or whoever holds the secret is blocked or deleted.
    Every door a secret opens asks this: the token endpoint and the
    introspection endpoint."""
    if client is None or client.authorization_grant_type != client.GRANT_CLIENT_CREDENTIALS:
        return ""
    if client.account_id is not None and not client.account.is_active:
        return "account_blocked"
    if not client.secret_by_operator:
        holder = client.secret_holder if client.secret_holder_id else None
        if holder is None or not holder.is_active:
            return "secret_holder_gone"
    return ""


def token_scope_resources(token) -> frozenset[str]:
    """What the token's scopes name, within its client's scopes now."""
    named = scopes.resources_of(token.scope)
    if token.application is not None:
        named &= scopes.resources_of(token.application.scope)
    return named


def token_scope_now(token) -> str:
    """The token's scopes its client still allows, as words (introspection
    tells resource servers these): a scope the client no longer has is
    dropped."""
    words = scopes.parse(token.scope)
    if token.application is not None:
        allowed = set(scopes.parse(token.application.scope))
        words = [w for w in words if w in allowed]
    return " ".join(words)


def token_cap(request) -> frozenset[str]:
    """The token's scopes ∩ its client's ∩ its holder's permissions, once per request."""
    token = request.auth
    cached = getattr(token, "_iam_cap", None)
    if cached is None:
        cached = token_scope_resources(token)
        held = holder_permissions(token.application)
        if held is not None:
            cached = cached & held
        token._iam_cap = cached
    return cached


def token_permissions(request) -> frozenset[str]:
    """What this request's token may do: its account's permissions ∩ cap."""
    return permissions(request.user) & token_cap(request)


def client_name(client) -> str:
    return (client.name or client.client_id) if client is not None else ""


def token_actor(request) -> Actor:
    """The actor of an API write: the token's account, capped, naming the client."""
    return replace(
        Actor.of(request),
        cap=token_cap(request),
        cap_holder=holder_id(request.auth.application),
        client=client_name(request.auth.application),
    )


def holder_id(client) -> int | None:
    """Whose permissions cap the client's writes, read again under the
    access lock (accounts.delegation.bound_of): the secret holder's id, 0
    when they were deleted, None when no holder caps the client."""
    if holder_permissions_apply(client):
        return client.secret_holder_id or 0
    return None
