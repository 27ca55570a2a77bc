"""The API's audit events: every token issued, refreshed, revoked or refused,
and every client created, changed or deleted, with the client's name.

Never a token or a secret: the details name the client, the grant, the
scopes and why.
"""

from __future__ import annotations

from dataclasses import replace

from accounts.audit import Actor, AuditAction, audit


def client_facts(client) -> dict:
    if client is None:
        return {}
    return {"client": client.name, "client_id": client.client_id}


def token_event(
    action: AuditAction,
    *,
    by: Actor | None = None,
    client=None,
    user=None,
    label: str = "",
    success: bool = True,
    **details,
) -> None:
    """One `api.token.*` event. The target is the account the token is (or
    would have been) for; the actor is that account too, or nobody when the
    caller was not identified, unless another account's write caused the
    event (an admin, or a client's token, blocking or deleting the account):
    then that account, and the client it acted through, stay the actor.
    `label` names an account that is not known (a refused password grant
    for an unknown address)."""
    facts = {**client_facts(client), **{k: v for k, v in details.items() if v not in (None, "")}}
    known = user if user is not None and user.pk else None
    by = by or Actor()
    someone_else = by.user is not None and known is not None and by.user.pk != known.pk
    if known is not None and not someone_else:
        by = by.as_user(known)
    elif user is None and client is not None and by.user is None and not by.operator:
        # Nobody identified (the token endpoint): the client is who called.
        by = replace(by, user=None, label=f"client {client.name}")
    audit(
        action,
        by=by,
        target=known,
        target_label=label[:254] if user is None else "",
        target_type="user" if user is None and label else "",
        success=success,
        details=facts,
    )
