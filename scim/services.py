"""What a provisioning client may change, and how: accounts through the
account services (their rules, rank and audit hold), groups only through the
client's group map, within its ceiling.

Each write runs in one `access_write` (its lock, the client's permissions
read fresh, the root invariant) and the account services nest inside it, so
a refusal rolls the whole SCIM request back and is audited once.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import access
from accounts.audit import Actor, AuditAction, audit
from accounts.delegation import access_write, group_scopes, user_reach
from accounts.errors import AccountError
from accounts.inputs import clean_name, normalize_email
from accounts.models import Group as LocalGroup
from accounts.models import Membership, User
from accounts.selectors import user_get_by_email
from accounts.services import user_create, user_delete, user_update
from accounts.services.common import reload
from scim.models import Account, Client, Group
from scim.tokens import new_token

NAME_MAX = Client._meta.get_field("name").max_length
EDIT = "backoffice:users:edit"


# --- clients (the command line) ------------------------------------------------------


def _clean_map(group_map) -> dict[str, list[str]]:
    """{SCIM displayName: [local group names]}; a single name may be a string."""
    if not isinstance(group_map, dict):
        raise AccountError("The group map must be a JSON object: SCIM group → local group(s).")
    cleaned = {}
    for scim_name, local in group_map.items():
        local = [local] if isinstance(local, str) else local
        if not (
            isinstance(scim_name, str)
            and scim_name.strip()
            and isinstance(local, list)
            and all(isinstance(n, str) and n for n in local)
        ):
            raise AccountError(
                "The group map must map each SCIM group name to a local group name "
                "or a list of them."
            )
        cleaned[scim_name.strip()] = sorted(set(local))
    return cleaned


def _existing_groups(names) -> None:
    missing = sorted(
        set(names) - set(LocalGroup.objects.filter(name__in=names).values_list("name", flat=True))
    )
    if missing:
        raise AccountError(f"No group named {', '.join(missing)}.")


def client_create(*, name: str, group_map=None, ceiling=(), by: Actor) -> tuple[Client, str]:
    """A new provisioning client and its token (returned this once)."""
    name = (name or "").strip()
    if not name or len(name) > NAME_MAX or not name.isprintable():
        raise AccountError(f"The name must be 1 to {NAME_MAX} printable characters.")
    group_map = _clean_map({} if group_map is None else group_map)
    ceiling = sorted(set(ceiling))
    _existing_groups({n for names in group_map.values() for n in names} | set(ceiling))
    token, key, secret_hash = new_token()
    try:
        with transaction.atomic():
            client = Client.objects.create(
                name=name, key=key, secret_hash=secret_hash, group_map=group_map, ceiling=ceiling
            )
    except IntegrityError:
        raise AccountError(f"A SCIM client named {name} already exists.") from None
    audit(
        AuditAction.SCIM_CLIENT_CREATED,
        by=by,
        target=client,
        details={"group_map": group_map, "ceiling": ceiling or "operator"},
    )
    return client, token


def client_revoke(*, client: Client, by: Actor) -> None:
    """The token stops working at once; what the client provisioned stays."""
    if client.revoked_at is None:
        client.revoked_at = timezone.now()
        client.save(update_fields=["revoked_at"])
        audit(AuditAction.SCIM_CLIENT_REVOKED, by=by, target=client)


def client_actor(client: Client, request=None) -> Actor:
    """Who a client's requests act as: bounded by its ceiling, or the
    operator's trust when it has none (like the SSO role map)."""
    label = client.source
    if client.ceiling:
        return Actor.bounded(request=request, label=label, ceiling=client.ceiling)
    return Actor.system(request=request, label=label)


def mapped_group_names() -> set[str]:
    """Local groups some client's map or ceiling names (not to be renamed)."""
    names = set()
    for group_map, ceiling in Client.objects.filter(revoked_at=None).values_list(
        "group_map", "ceiling"
    ):
        names.update(n for local in group_map.values() for n in local)
        names.update(ceiling)
    return names


def no_self_service_password(user) -> bool:
    """A provisioned account without a local password logs in by SSO only."""
    return not user.has_usable_password() and user.scim_accounts.exists()


# --- accounts ------------------------------------------------------------------------


@dataclass
class UserData:
    """What a SCIM User says that this service keeps."""

    email: str
    first_name: str
    last_name: str
    active: bool
    external_id: str


def _names(data: UserData) -> tuple[str, str]:
    """Both names are required here; IdPs often lack one (a service account
    has no surname): fall back on the other, then on the address."""
    fallback = data.email.split("@", 1)[0]
    first = (data.first_name or "").strip() or (data.last_name or "").strip() or fallback
    last = (data.last_name or "").strip() or first
    return (
        clean_name(first, "name.givenName"),
        clean_name(last, "name.familyName"),
    )


def _taken_external_id(client: Client, external_id: str, user=None) -> None:
    if not external_id:
        return
    clash = Account.objects.filter(client=client, external_id=external_id)
    if user is not None:
        clash = clash.exclude(user=user)
    if clash.exists():
        raise AccountError("Another user of this client has this externalId.", field="externalId")


def user_provision(*, client: Client, data: UserData, by: Actor) -> tuple[User, Account]:
    """POST /Users: create the account, or link the existing one with this
    address on first contact (a client links an account once)."""
    first, last = _names(data)
    with access_write(by=by, target_label=data.email) as writer:
        _taken_external_id(client, data.external_id)
        user = user_get_by_email(data.email)
        if user is None:
            user = user_create(
                email=data.email,
                first_name=first,
                last_name=last,
                password=None,
                active=data.active,
                by=by,
                via=client.source,
            )
            account = Account.objects.create(client=client, user=user, external_id=data.external_id)
            audit(
                AuditAction.SCIM_USER_CREATED,
                by=by,
                target=user,
                details={"client": client.name, "external_id": data.external_id},
            )
            return user, account
        if Account.objects.filter(client=client, user=user).exists():
            raise AccountError("A user with this userName already exists.", field="userName")
        writer.outranks(user)
        account = Account.objects.create(client=client, user=user, external_id=data.external_id)
        audit(
            AuditAction.SCIM_USER_LINKED,
            by=by,
            target=user,
            details={"client": client.name, "external_id": data.external_id, "by": "email"},
        )
        _user_write(client=client, user=user, account=account, data=data, by=by)
        return user, account


def account_of(client: Client, user: User) -> Account:
    """The client's link to `user`, made on first contact (a GET by userName
    finds an account the client has never written; its first write links it)."""
    account, _ = Account.objects.get_or_create(client=client, user=user)
    return account


def user_write(*, client: Client, user: User, data, by: Actor) -> User:
    """PUT or PATCH /Users/<id>: names, address, status and externalId.
    `data` is the UserData, or (a PATCH) a function making it from the user
    as read under the lock: a PATCH made from an earlier read would undo a
    concurrent write (unblock an account just deactivated).
    Rank first: an externalId-only change (which links the account to this
    client) never reaches the account services and their rank check."""
    with access_write(by=by, target=user) as writer:
        reload(user)
        writer.outranks(user)
        if callable(data):
            data = data(user)
        _taken_external_id(client, data.external_id, user=user)
        account = account_of(client, user)
        _user_write(client=client, user=user, account=account, data=data, by=by)
    return user


def _user_write(*, client, user, account, data: UserData, by: Actor) -> None:
    first, last = _names(data)
    before = {
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "active": user.is_active,
        "external_id": account.external_id,
    }
    after = {
        "email": normalize_email(data.email),  # its spelling here (accounts.inputs)
        "first_name": first,
        "last_name": last,
        "active": data.active,
        "external_id": data.external_id,
    }
    changed = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    if not changed:
        return
    if "external_id" in changed:
        account.external_id = data.external_id
        account.save(update_fields=["external_id"])
    if changed.keys() - {"external_id"}:
        user_update(
            user=user,
            email=data.email,
            first_name=first,
            last_name=last,
            groups=list(user.groups.all()),
            active=data.active,
            by=by,
        )
    audit(
        AuditAction.SCIM_USER_UPDATED,
        by=by,
        target=user,
        details={"client": client.name, "changed": sorted(changed)},
    )
    if changed.get("active") == [True, False]:
        audit(
            AuditAction.SCIM_USER_DEACTIVATED, by=by, target=user, details={"client": client.name}
        )


def user_remove(*, client: Client, user: User, by: Actor) -> None:
    """DELETE /Users/<id>: the account service's delete (sessions and tokens
    end, the audit trail keeps the history). Only an account this client
    provisioned or linked."""
    label, pk = user.email, user.pk
    with access_write(by=by, target=user):
        if not Account.objects.filter(client=client, user=user).exists():
            raise AccountError("This user was not provisioned by this client.")
        user_delete(user=user, by=by)
        audit(
            AuditAction.SCIM_USER_DELETED,
            by=by,
            target_type="user",
            target_id=pk,
            target_label=label,
            details={"client": client.name},
        )


# --- groups --------------------------------------------------------------------------


@dataclass
class GroupData:
    display_name: str
    external_id: str
    member_ids: set[int]


def _clean_display_name(value: str) -> str:
    value = (value or "").strip()
    if not value or len(value) > 255 or not value.isprintable():
        raise AccountError("displayName must be 1 to 255 printable characters.")
    return value


def _members(client: Client, user_ids: set[int], writer) -> list[Account]:
    """The client's accounts of these users. An account not yet linked is
    linked only if the client outranks it (as POST and PUT/PATCH /Users
    require): a link makes a password-less account SSO-only, switching off
    its password reset and passkey login. One above the client is left out
    of the group, and audited."""
    users = {u.pk: u for u in User.objects.filter(pk__in=user_ids)}
    unknown = sorted(user_ids - users.keys())
    if unknown:
        raise AccountError(f"No user with id {', '.join(map(str, unknown))}.", field="members")
    linked = {a.user_id: a for a in Account.objects.filter(client=client, user__in=users)}
    members = []
    for pk in sorted(users):
        beyond = frozenset()
        if pk not in linked and not writer.by.operator:
            beyond = user_reach(pk) - writer.permissions
        if beyond:
            audit(
                AuditAction.SCIM_GROUP_SYNC_REFUSED,
                by=writer.by,
                target=users[pk],
                success=False,
                details={"client": client.name, "refused": {"link": sorted(beyond)}},
            )
            continue
        members.append(linked.get(pk) or account_of(client, users[pk]))
    return members


def group_create(*, client: Client, data: GroupData, by: Actor) -> Group:
    name = _clean_display_name(data.display_name)
    with access_write(by=by, target_label=name) as writer:
        if Group.objects.filter(client=client, display_name__iexact=name).exists():
            raise AccountError("A group with this displayName already exists.", field="displayName")
        group = Group.objects.create(client=client, display_name=name, external_id=data.external_id)
        members = _members(client, data.member_ids, writer)
        group.members.set(members)
        audit(
            AuditAction.SCIM_GROUP_CREATED,
            by=by,
            target_type="scim group",
            target_id=group.pk,
            target_label=name,
            details={"client": client.name, "members": len(members)},
        )
        _sync(client=client, writer=writer, accounts=members)
    return group


def group_write(*, client: Client, group: Group, data, by: Actor) -> Group:
    """PUT or PATCH /Groups/<id>: name and members; local groups follow.
    `data` is the GroupData, or (a PATCH) a function making it from the
    group as read under the lock: a PATCH made from an earlier read would
    put back a member a concurrent request removed, and their groups."""
    with access_write(by=by, target_label=group.display_name) as writer:
        reload(group)
        if callable(data):
            data = data(group)
        name = _clean_display_name(data.display_name)
        clash = Group.objects.filter(client=client, display_name__iexact=name).exclude(pk=group.pk)
        if clash.exists():
            raise AccountError("A group with this displayName already exists.", field="displayName")
        before = set(group.members.all())
        after = set(_members(client, data.member_ids, writer))
        renamed = name != group.display_name
        changed = {}
        if renamed:
            changed["displayName"] = [group.display_name, name]
        if data.external_id != group.external_id:
            changed["externalId"] = [group.external_id, data.external_id]
        group.display_name, group.external_id = name, data.external_id
        group.save()
        group.members.set(after)
        added, removed = after - before, before - after
        if added or removed:
            changed["members"] = {"added": len(added), "removed": len(removed)}
        if changed:
            audit(
                AuditAction.SCIM_GROUP_UPDATED,
                by=by,
                target_type="scim group",
                target_id=group.pk,
                target_label=name,
                details={"client": client.name, "changed": changed},
            )
        _sync(
            client=client, writer=writer, accounts=(before | after) if renamed else added | removed
        )
    return group


def group_remove(*, client: Client, group: Group, by: Actor) -> None:
    with access_write(by=by, target_label=group.display_name) as writer:
        members = list(group.members.all())
        pk, name = group.pk, group.display_name
        group.delete()
        audit(
            AuditAction.SCIM_GROUP_DELETED,
            by=by,
            target_type="scim group",
            target_id=pk,
            target_label=name,
            details={"client": client.name, "members": len(members)},
        )
        _sync(client=client, writer=writer, accounts=members)


def _sync(*, client: Client, writer, accounts) -> None:
    """Bring each account's memberships from this client in line with its
    SCIM groups and the group map. Memberships given otherwise (by hand, by
    an SSO role map) are never touched; a group beyond the client's ceiling
    is neither given nor taken away, nor is anything changed for an account
    that outranks the client or by a client without users:edit: those are
    left as they are and audited."""
    accounts = list(accounts)
    if not accounts:
        return
    by = writer.by
    group_map = client.group_map
    source = client.source
    for account in accounts:
        user = account.user
        scim_names = account.groups.values_list("display_name", flat=True)
        wanted_names = {n for scim_name in scim_names for n in group_map.get(scim_name, [])}
        wanted = {g.pk: g for g in LocalGroup.objects.filter(name__in=wanted_names)}
        current = {m.group_id: m for m in user.memberships.select_related("group")}
        adding = [g for pk, g in wanted.items() if pk not in current]
        removing = [m.group for pk, m in current.items() if m.source == source and pk not in wanted]
        if not adding and not removing:
            continue
        refused = {}
        if not by.operator:
            beyond = user_reach(user.pk) - writer.permissions
            if EDIT not in writer.permissions:
                refused = {"right": EDIT}  # groups are users:edit's, at every door
                adding, removing = [], []
            elif beyond:
                refused = {"rank": sorted(beyond)}
                adding, removing = [], []
            scopes = group_scopes([g.pk for g in adding + removing])
            for group in list(adding):
                if scopes.get(group.pk, frozenset()) - writer.permissions:
                    refused.setdefault("give", []).append(group.name)
                    adding.remove(group)
            for group in list(removing):
                if scopes.get(group.pk, frozenset()) - writer.permissions:
                    refused.setdefault("take_away", []).append(group.name)
                    removing.remove(group)
        if refused:
            audit(
                AuditAction.SCIM_GROUP_SYNC_REFUSED,
                by=by,
                target=user,
                success=False,
                details={"client": client.name, "refused": refused},
            )
        if not adding and not removing:
            continue
        Membership.objects.bulk_create(
            [Membership(user=user, group=g, source=source) for g in adding]
        )
        Membership.objects.filter(
            user=user, source=source, group__in=[g.pk for g in removing]
        ).delete()
        access.changed(User.objects.filter(pk=user.pk))
        audit(
            AuditAction.SCIM_GROUPS_SYNCED,
            by=by,
            target=user,
            details={
                "client": client.name,
                "added": sorted(g.name for g in adding),
                "removed": sorted(g.name for g in removing),
            },
        )
