"""Writes about API clients and tokens.

Who may do what, in the words of accounts.delegation:
- creating, changing and deleting clients each needs its own resource
  (`backoffice:api-clients:create|edit|delete`);
- a client-credentials client acts as its OWN service account
  (`User.Kind.SERVICE`), made with the client and deleted with it: never as
  a person's account. Its groups are given like anyone's (the user screens,
  grant bound and rank); any later change to the client (its secret above
  all) needs *rank* over that account;
- whoever creates the client or replaces its secret becomes its secret
  holder: the client's tokens carry at most what the holder holds at the
  time of use (api.principal), so a secret never does more than the people
  who have seen it could do;
- a client acting for people (authorization code) holds their approvals:
  repointing its redirect URIs or replacing its secret drops them, and its
  tokens, so nobody collects codes on approvals given to another address.

Each write runs in `access_write` (one lock, the actor's permissions read
fresh, refusals audited) and writes its own `api.client.*` event. `Actor.system()`
is an operator (`manage.py apiclient`), trusted like root.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from oauth2_provider.generators import generate_client_secret
from oauth2_provider.models import AccessToken, Grant, RefreshToken

from accounts.audit import Actor, AuditAction, audit
from accounts.delegation import access_write
from accounts.errors import AccountError
from accounts.inputs import clean_name
from accounts.models import Membership, User
from accounts.services import privileged
from api import scopes as scope_rules
from api.audit import client_facts, token_event
from api.models import LOOPBACK_HOSTS, Approval, Client

GRANTS = {
    "authorization_code": Client.GRANT_AUTHORIZATION_CODE,
    "client_credentials": Client.GRANT_CLIENT_CREDENTIALS,
    "password": Client.GRANT_PASSWORD,
}
MAX_REDIRECT_URIS = 10
MAX_URI = 500
DEFAULT_SCOPES = [scope_rules.READ]


# --- checks on what people type ------------------------------------------------


def clean_redirect_uris(uris, *, grant: str) -> list[str]:
    """Exact, absolute URIs: https, or http on the loopback interface (RFC 8252);
    no fragment, no credentials. Only the authorization code grant redirects."""
    uris = list(dict.fromkeys(u.strip() for u in uris if u and u.strip()))
    if grant != Client.GRANT_AUTHORIZATION_CODE:
        if uris:
            raise AccountError("Only authorization-code clients have redirect URIs.")
        return []
    if not uris:
        raise AccountError("An authorization-code client needs at least one redirect URI.")
    if len(uris) > MAX_REDIRECT_URIS:
        raise AccountError(f"A client has at most {MAX_REDIRECT_URIS} redirect URIs.")
    for uri in uris:
        shown = uri[:80]
        if len(uri) > MAX_URI or any(c.isspace() or ord(c) < 32 for c in uri):
            raise AccountError(f"Redirect URI {shown!r} is too long or has spaces.")
        try:
            # A bracket without its pair ("https://[::1/") or a port that is
            # no number raises here, not a refusal further on.
            parts = urlsplit(uri)
            parts.port  # noqa: B018
        except ValueError:
            parts = None
        if parts is None or "#" in uri or "@" in parts.netloc or not parts.hostname:
            raise AccountError(
                f"Redirect URI {shown!r} must be absolute, without a fragment or credentials."
            )
        if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
            continue
        if parts.scheme != "https":
            raise AccountError(
                f"Redirect URI {shown!r} must use https (http only on 127.0.0.1, ::1 or localhost)."
            )
    return uris


def clean_scopes(requested, *, grant: str, account: User | None = None) -> list[str]:
    wanted = scope_rules.parse(requested) or list(DEFAULT_SCOPES)
    bad = scope_rules.unknown(wanted)
    if bad:
        raise AccountError(
            f"Unknown scope {', '.join(sorted(bad))[:200]}: use read, write, introspect "
            "or a resource name (area:screen:action)."
        )
    return wanted


def _clean_groups_from(person: User | None, *, grant: str) -> User | None:
    if person is None:
        return None
    if grant != Client.GRANT_CLIENT_CREDENTIALS:
        raise AccountError(
            "Only client-credentials clients have a service account to give groups to; "
            "the others act for the person who logs in."
        )
    return person


def service_email(client: Client) -> str:
    """A service account's login name: unique and never deliverable (RFC 2606
    reserves `.example`), yet an address every door accepts and renders
    (SCIM's scim2-models refuses the special-use `.invalid`, `.test`, …)."""
    return f"svc-{client.pk}-{client.client_id[:8].lower()}@api-clients.example"


def _holder(client: Client, by: Actor) -> None:
    """Whoever sees the secret now holds it (None and the flag: the operator)."""
    client.secret_holder = by.user if not by.operator else None
    client.secret_by_operator = bool(by.operator)
    client.secret_holder_label = str(by.user or by)[:254]


# --- clients -----------------------------------------------------------------------


def client_create(
    *,
    name: str,
    grant: str,
    redirect_uris=(),
    scopes=(),
    groups_from: User | None = None,
    by: Actor,
) -> tuple[Client, str]:
    """A new confidential client and its secret, in clear text this once (only
    a hash is stored). A client-credentials client gets its own service
    account, empty, or with the groups `groups_from` has now (each within
    the actor's grant bound, as giving them on the user screen would be).
    The actor becomes the secret's holder."""
    name = clean_name(name, "Name")
    if grant not in GRANTS:
        raise AccountError("The grant is one of authorization_code, client_credentials, password.")
    grant = GRANTS[grant]
    uris = clean_redirect_uris(redirect_uris, grant=grant)
    groups_from = _clean_groups_from(groups_from, grant=grant)
    wanted = clean_scopes(scopes, grant=grant)
    secret = generate_client_secret()
    with access_write(by=by, target_label=name) as writer:
        writer.require("backoffice:api-clients:create", "create API clients")
        groups, ends = [], {}
        if groups_from is not None:
            # What the holder holds now, and only that: an eligibility gives
            # nothing (and a service account can never activate one), an
            # ended membership nothing either; a time-bound one keeps its end.
            held = (
                Membership.objects.effective()
                .filter(user_id=groups_from.pk, group__eligible_only=False)
                .select_related("group")
                .order_by("group__name")
            )
            groups = [m.group for m in held]
            ends = {m.group_id: m.ends_at for m in held}
            writer.within_groups(groups, "give group %(name)s")
        # Four eyes: a group that asks for a second admin's approval is
        # asked for (a grant request for the service account), not copied.
        waiting = [g for g in groups if privileged.needs_second_admin(g, by)]
        groups = [g for g in groups if g not in waiting]
        client = Client(
            name=name,
            client_type=Client.CLIENT_CONFIDENTIAL,
            authorization_grant_type=grant,
            redirect_uris=" ".join(uris),
            scope=" ".join(wanted),
            client_secret=secret,
            hash_client_secret=True,
            created_by=by.user,
            # The operator is no one's name: the screens say "the operator".
            created_by_label="" if by.user is None else str(by),
        )
        _holder(client, by)
        client.save()
        service = None
        if grant == Client.GRANT_CLIENT_CREDENTIALS:
            service = User.objects.create_user(
                email=service_email(client),
                first_name=name[:150],
                last_name=client.client_id[:8],
                kind=User.Kind.SERVICE,
            )
            Membership.objects.bulk_create(
                Membership(user=service, group=g, ends_at=ends.get(g.pk)) for g in groups
            )
            client.account = service
            client.save(update_fields=["account"])
            for group in waiting:
                privileged.grant_request(
                    user=service,
                    group=group,
                    ends_at=ends.get(group.pk),
                    source=Membership.MANUAL,
                    by=by,
                    writer=writer,
                )
        audit(
            AuditAction.API_CLIENT_CREATED,
            by=by,
            target=client,
            details={
                **client_facts(client),
                "grant": grant,
                "service_account": service.email if service else "",
                "groups": sorted(g.name for g in groups),
                "groups_from": groups_from.email if groups_from else "",
                "secret_holder": client.secret_holder_label,
                "scope": client.scope,
                "redirect_uris": uris,
            },
        )
    return client, secret


def _bound_rank(writer, client: Client) -> None:
    """Any change to a bound client needs rank over its account."""
    if client.account_id is not None:
        account = User.objects.filter(pk=client.account_id).first()
        if account is not None:
            writer.outranks(account)


def _reload(client: Client) -> None:
    try:
        client.refresh_from_db()
    except Client.DoesNotExist:
        raise AccountError("This API client no longer exists.") from None


def client_update(*, client: Client, name: str, redirect_uris=(), scopes=(), by: Actor) -> Client:
    """Rename, repoint, rescope. New redirect URIs drop the approvals people
    gave and the client's tokens (they were given to the old addresses)."""
    name = clean_name(name, "Name")
    with access_write(by=by, target=client) as writer:
        _reload(client)
        writer.require("backoffice:api-clients:edit", "edit API clients")
        _bound_rank(writer, client)
        uris = clean_redirect_uris(redirect_uris, grant=client.grant)
        wanted = clean_scopes(scopes, grant=client.grant)
        before = {
            "name": client.name,
            "redirect_uris": client.redirect_uris.split(),
            "scope": client.scope,
        }
        client.name, client.redirect_uris, client.scope = name, " ".join(uris), " ".join(wanted)
        client.save()
        after = {"name": name, "redirect_uris": uris, "scope": client.scope}
        changes = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
        if "redirect_uris" in changes:
            _forget_client_grants(client, by=by, reason="redirect_uris_changed")
        if changes:
            audit(
                AuditAction.API_CLIENT_UPDATED,
                by=by,
                target=client,
                details={**client_facts(client), **changes},
            )
    return client


def client_rotate_secret(*, client: Client, by: Actor) -> str:
    """A new secret (shown once); the old one stops working, and so do the
    client's tokens and the approvals people gave it."""
    secret = generate_client_secret()
    with access_write(by=by, target=client) as writer:
        _reload(client)
        writer.require("backoffice:api-clients:edit", "replace API client secrets")
        _bound_rank(writer, client)
        client.client_secret = secret
        _holder(client, by)
        client.save()
        _forget_client_grants(client, by=by, reason="secret_rotated")
        audit(
            AuditAction.API_CLIENT_SECRET_ROTATED,
            by=by,
            target=client,
            details={**client_facts(client), "secret_holder": client.secret_holder_label},
        )
    return secret


def client_delete(*, client: Client, by: Actor) -> None:
    """Delete (revoke) a client: its tokens and approvals go with it, and so
    does its service account (it was the client's alone)."""
    with access_write(by=by, target=client) as writer:
        _reload(client)
        writer.require("backoffice:api-clients:delete", "delete API clients")
        _bound_rank(writer, client)
        facts, pk, label = client_facts(client), client.pk, str(client)
        tokens = AccessToken.objects.filter(application=client).count()
        service = client.account if client.account_id else None
        client.delete()
        gone = ""
        if service is not None and service.is_service:
            gone = service.email
            service.delete()
        audit(
            AuditAction.API_CLIENT_DELETED,
            by=by,
            target_type="client",
            target_id=pk,
            target_label=label,
            details={**facts, "access_tokens": tokens, "service_account": gone},
        )


def _forget_client_grants(client: Client, *, by: Actor, reason: str) -> None:
    revoked = _revoke(
        AccessToken.objects.filter(application=client),
        RefreshToken.objects.filter(application=client),
    )
    Grant.objects.filter(application=client).delete()
    Approval.objects.filter(client=client).delete()
    if revoked:
        token_event(AuditAction.API_TOKEN_REVOKED, by=by, client=client, reason=reason, **revoked)


# --- tokens ------------------------------------------------------------------------


def _revoke(access_tokens, refresh_tokens) -> dict:
    """Revoke a set of tokens in two statements: refresh tokens are marked
    revoked (kept, so a replay is still recognised), access tokens deleted."""
    with transaction.atomic():
        refresh = refresh_tokens.filter(revoked__isnull=True).update(revoked=timezone.now())
        _, deleted = access_tokens.delete()
    access = deleted.get(AccessToken._meta.label, 0)
    return {"access_tokens": access, "refresh_tokens": refresh} if access or refresh else {}


def tokens_revoke_for_account(user: User, *, reason: str, by: Actor) -> dict:
    """accounts.extensions: the account was blocked or deleted, or its password
    replaced. Every token it holds (for any client; a service account's
    tokens when it is the one blocked), every pending code and every
    remembered approval stops working in this write. A person blocked or
    deleted also ends the tokens of the clients whose secret they hold
    (those carry nothing now, api.principal, and the secret mints no more
    until someone replaces it). So does an
    account taken over at an SSO link (sso.services: its credentials
    removed): whoever saw those secrets is out, and the account's new
    holder (and the groups ROLE_MAP gives it) never saw them; the clients
    hold no secret holder until someone replaces the secret."""
    mine = Q(user=user)
    void_secrets = reason in ("blocked", "deleted", AuditAction.SSO_LINKED.value)
    if void_secrets:
        mine |= Q(application__secret_holder=user, application__secret_by_operator=False)
    access = AccessToken.objects.filter(mine)
    revoked = _revoke(access, RefreshToken.objects.filter(mine))
    if void_secrets:
        # The secrets they held are void for good: unblocking them later (or
        # the account's new holder after a takeover) does not revive one;
        # the label keeps who held it, and a replacement restores the client.
        Client.objects.filter(secret_holder=user, secret_by_operator=False).update(
            secret_holder=None
        )
    Grant.objects.filter(user=user).delete()
    # Approvals too: one given under the old credentials (by whoever held
    # them) must not send the account's next code to a client unasked.
    Approval.objects.filter(user=user).delete()
    if revoked:
        token_event(AuditAction.API_TOKEN_REVOKED, by=by, user=user, reason=reason, **revoked)
    return revoked
