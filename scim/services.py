"""What a provisioning client may change, and how: accounts through the
account services (their rules, rank and audit hold), groups only through the
client's group map, within its ceiling.

Each write runs in one `access_write` (its lock, the client's permissions
read fresh, the root invariant), so a refusal rolls the whole SCIM request
back and is audited once. The rules are the account services' and the
Writer's (require, outranks, within), never copies of them; where SCIM has
an event of its own for an action (a deactivation), the action is audited
once, as that event. Where an account service opens its own access write
inside SCIM's (creating, renaming), it joins it (accounts.delegation).

A client adopts (links) an account it did not create only within its
rights and rank, and never one with local credentials (`_adopt`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import access
from accounts.audit import Actor, AuditAction, audit
from accounts.delegation import access_write, bound_of
from accounts.errors import AccessRefused, AccountError
from accounts.inputs import clean_name, normalize_email
from accounts.models import Group as LocalGroup
from accounts.models import Membership, User
from accounts.selectors import user_get_by_email, user_local_credentials
from accounts.services import privileged, user_create, user_delete, user_update
from accounts.services.common import reload
from accounts.services.users import user_status_apply
from scim.models import Account, Client, Group
from scim.tokens import new_token

NAME_MAX = Client._meta.get_field("name").max_length
EDIT = "backoffice:users:edit"
VIEW = "backoffice:users:view"


class AdoptionRefused(AccountError):
    """An existing account this client may not take over: the client's
    uniqueness error (409), audited after the rollback."""

    def __init__(self, message: str, *, user: User, credentials: list[str], matched: str):
        super().__init__(message, field="userName", code="conflict")
        self.user, self.credentials, self.matched = user, credentials, matched


# --- clients (the command line) ------------------------------------------------------


MAX_MAP_DAYS = 3650


def map_entry(value) -> tuple[list[str], int | None]:
    """One stored group-map value: (local group names, days or None). The
    plain form is a list of names; a time-bound one is {"groups": [names],
    "days": N}: memberships it makes end N days after they are made."""
    if isinstance(value, dict):
        return list(value.get("groups", [])), value.get("days")
    if isinstance(value, str):
        return [value], None
    return list(value or []), None


def _clean_map(group_map) -> dict:
    """{SCIM displayName: [local group names]}, a single name may be a
    string; or {SCIM displayName: {"group": name(s), "days": N}}: the
    memberships it gives end N days (1 to MAX_MAP_DAYS) after they are
    made (set when made, not renewed by later syncs)."""
    if not isinstance(group_map, dict):
        raise AccountError("The group map must be a JSON object: SCIM group → local group(s).")
    cleaned = {}
    for scim_name, local in group_map.items():
        days = None
        if isinstance(local, dict):
            unknown = set(local) - {"group", "groups", "days"}
            days = local.get("days")
            local = local.get("group", local.get("groups"))
            if (
                unknown
                or isinstance(days, bool)
                or not isinstance(days, int)
                or not 1 <= days <= MAX_MAP_DAYS
            ):
                raise AccountError(
                    'A time-bound group map entry is {"group": NAME, "days": N}, '
                    f"N from 1 to {MAX_MAP_DAYS}."
                )
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
        names = sorted(set(local))
        cleaned[scim_name.strip()] = names if days is None else {"groups": names, "days": days}
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
    _existing_groups(
        {n for value in group_map.values() for n in map_entry(value)[0]} | set(ceiling)
    )
    token, key, secret_hash = new_token()
    try:
        with transaction.atomic():
            client = Client.objects.create(
                name=name, key=key, secret_hash=secret_hash, group_map=group_map, ceiling=ceiling
            )
    except IntegrityError:
        raise AccountError(
            f"A SCIM client named {name} already exists.", code="name_taken"
        ) from None
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
        names.update(n for local in group_map.values() for n in map_entry(local)[0])
        names.update(ceiling)
    return names


def mapped_group_references() -> dict:
    """Each active client's group map and ceiling (--max-group) as `access
    export` shows them (read-only: `manage.py scimtoken` owns them)."""
    clients = {}
    for name, group_map, ceiling in Client.objects.filter(revoked_at=None).values_list(
        "name", "group_map", "ceiling"
    ):
        clients[name] = {
            "group_map": {
                k: sorted(map_entry(v)[0])
                if map_entry(v)[1] is None
                else {"groups": sorted(map_entry(v)[0]), "days": map_entry(v)[1]}
                for k, v in sorted(group_map.items())
            },
            "max_group": sorted(ceiling),
        }
    return {"scim_clients": dict(sorted(clients.items()))}


def no_self_service_password(user) -> bool:
    """A provisioned account without a local password logs in by SSO only."""
    return not user.has_usable_password() and user.scim_accounts.exists()


# --- accounts ------------------------------------------------------------------------


def users_readable(by: Actor) -> None:
    """Reading accounts (listing, filtering, fetching one) is users:view's,
    as on the screens and through the API: within the client's bound, read
    now (an operator-trusted client holds every permission)."""
    if VIEW not in bound_of(by)[0]:
        raise AccessRefused(
            f"Reading accounts needs {VIEW}, which this client's ceiling does not hold.",
            reason="right",
            resources=[VIEW],
        )


@dataclass
class UserData:
    """What a SCIM User says that this service keeps."""

    email: str
    first_name: str
    last_name: str
    active: bool
    external_id: str


def _names(data: UserData, user: User | None = None) -> tuple[str, str]:
    """Both names are required here; IdPs often lack one (a service account
    has no surname): fall back on the other, then on the address.
    With `user`, a name the request leaves as stored is kept as stored and
    not judged again: a write that repeats the account (a deactivation
    PATCH is applied to the stored account) never fails on what an older
    rule let in, so deprovisioning never depends on it (issue 20, 3)."""
    sent = ((data.first_name or "").strip(), (data.last_name or "").strip())
    stored = (user.first_name, user.last_name) if user is not None else None
    if sent == stored:
        return stored
    fallback = data.email.split("@", 1)[0]
    first = sent[0] or sent[1] or fallback
    last = sent[1] or first
    return (
        first if stored and first == stored[0] else clean_name(first, "name.givenName"),
        last if stored and last == stored[1] else clean_name(last, "name.familyName"),
    )


def _taken_external_id(client: Client, external_id: str, user=None) -> None:
    if not external_id:
        return
    clash = Account.objects.filter(client=client, external_id=external_id)
    if user is not None:
        clash = clash.exclude(user=user)
    if clash.exists():
        raise AccountError(
            "Another user of this client has this externalId.", field="externalId", code="conflict"
        )


def _adopt(*, client: Client, user: User, writer, matched: str, external_id: str = "") -> Account:
    """The client's link to `user`, made now if the client never wrote it.

    A link hands the account to the client: from then on its group map
    gives the account groups, and a password-less account logs in by SSO
    only. So a link is a write within the client's rights (users:edit) and
    rank, and it never takes an account with a local credential: the
    provider vouches for a person, not for whoever set that password or
    second factor (issue 20, 1 c). `matched` says how the account was found
    (userName, id, group member); the link's audit says how it was proven."""
    account = Account.objects.filter(client=client, user=user).first()
    if account is not None:
        return account
    writer.require(EDIT, "link accounts")
    writer.outranks(user)
    if user.is_service:
        raise AdoptionRefused(
            "This address belongs to an API client's service account; "
            "a provisioning client cannot take it.",
            user=user,
            credentials=["service_account"],
            matched=matched,
        )
    held = user_local_credentials(user)
    if held:
        raise AdoptionRefused(
            f"An account with this userName already exists and has local credentials "
            f"({', '.join(held)}) that this client cannot vouch for; it is not linked. "
            f"Remove them on the user's page (or delete the account) and retry.",
            user=user,
            credentials=held,
            matched=matched,
        )
    account = Account.objects.create(client=client, user=user, external_id=external_id)
    audit(
        AuditAction.SCIM_USER_LINKED,
        by=writer.by,
        target=user,
        details={
            "client": client.name,
            "external_id": external_id,
            "matched": matched,
            "proof": "no local credentials",
        },
    )
    return account


def _refused_link(client: Client, refused: AdoptionRefused, by: Actor) -> None:
    """After the rollback: the refusal, in the trail."""
    audit(
        AuditAction.SCIM_USER_LINK_REFUSED,
        by=by,
        target=refused.user,
        success=False,
        details={
            "client": client.name,
            "matched": refused.matched,
            "credentials": refused.credentials,
        },
    )


def user_provision(*, client: Client, data: UserData, by: Actor, then=None) -> tuple[User, Account]:
    """POST /Users: create the account, or adopt the existing one with this
    address (`_adopt`'s rules) on first contact (a client links an account
    once). `then(user, account)` runs inside the same transaction (the
    response is rendered there: an error after the write undoes it)."""
    first, last = _names(data)
    try:
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
                account = Account.objects.create(
                    client=client, user=user, external_id=data.external_id
                )
                audit(
                    AuditAction.SCIM_USER_CREATED,
                    by=by,
                    target=user,
                    details={"client": client.name, "external_id": data.external_id},
                )
            else:
                if Account.objects.filter(client=client, user=user).exists():
                    raise AccountError(
                        "A user with this userName already exists.",
                        field="userName",
                        code="email_taken",
                    )
                account = _adopt(
                    client=client,
                    user=user,
                    writer=writer,
                    matched="userName",
                    external_id=data.external_id,
                )
                _user_write(client=client, user=user, account=account, data=data, writer=writer)
            if then is not None:
                then(user, account)
            return user, account
    except AdoptionRefused as refused:
        _refused_link(client, refused, by)
        raise


def user_write(*, client: Client, user: User, data, by: Actor) -> User:
    """PUT or PATCH /Users/<id>: names, address, status and externalId, in
    one access write (one lock, one root-invariant check).
    `data` is the UserData, or (a PATCH) a function making it from the user
    and the client's account as read under the lock: a PATCH made from an
    earlier read would undo a concurrent write (unblock an account just
    deactivated).
    Rank first: an externalId-only change (which links the account to this
    client) never reaches the account services and their rank check."""
    try:
        with access_write(by=by, target=user) as writer:
            reload(user)
            writer.outranks(user)
            if not Account.objects.filter(client=client, user=user).exists():
                wanted = data(user, None) if callable(data) else data
                if _only_deactivation(user, wanted):
                    # Ending a leaver's access never waits for a link, nor
                    # makes one: a block is users:block's (and rank), a
                    # link users:edit's, and an account with a password or
                    # second factor is not the client's to take at all.
                    _status_write(client=client, user=user, active=False, writer=writer)
                    return user
            account = _adopt(client=client, user=user, writer=writer, matched="id")
            if callable(data):
                data = data(user, account)
            _taken_external_id(client, data.external_id, user=user)
            _user_write(client=client, user=user, account=account, data=data, writer=writer)
    except AdoptionRefused as refused:
        _refused_link(client, refused, by)
        raise
    return user


def _user_write(*, client, user, account, data: UserData, writer) -> None:
    """Inside the request's access write: each kind of change through the
    account services' rules, each action audited once. Names and address:
    user_update (its rules, its `user.updated`); status: user_status_apply
    (users:block, rank; a deactivation ends the sessions and API tokens at
    once), audited as one `scim.user_deactivated` naming the client; the
    externalId, which only SCIM keeps: `scim.user_updated`."""
    by = writer.by
    first, last = _names(data, user)
    email = normalize_email(data.email)  # its spelling here (accounts.inputs)
    profile = (email, first, last) != (user.email, user.first_name, user.last_name)
    if data.external_id != account.external_id:
        before = account.external_id
        account.external_id = data.external_id
        account.save(update_fields=["external_id"])
        audit(
            AuditAction.SCIM_USER_UPDATED,
            by=by,
            target=user,
            details={
                "client": client.name,
                "changed": ["external_id"],
                "external_id": [before, data.external_id],
            },
        )
    if profile:
        user_update(
            user=user,
            email=data.email,
            first_name=first,
            last_name=last,
            groups=list(user.groups.all()),
            active=user.is_active,
            by=by,
        )
    if data.active != user.is_active:
        _status_write(client=client, user=user, active=data.active, writer=writer)


def _only_deactivation(user: User, data: UserData) -> bool:
    """A write that asks nothing but `active: false` (Entra ID's
    deprovisioning PATCH): names and address as they are."""
    first, last = _names(data, user)
    same = (normalize_email(data.email), first, last) == (
        user.email,
        user.first_name,
        user.last_name,
    )
    return same and not data.active


def _status_write(*, client, user: User, active: bool, writer) -> None:
    """Block (its sessions and API tokens end at once) or unblock, under the
    account services' rules (users:block, rank), audited once naming the
    client; an account the client has not linked is named so."""
    details = user_status_apply(writer, user=user, active=active)
    if details is None:
        return
    details = {"client": client.name, **details}
    if not active:
        details["tokens_revoked"] = True
    if not Account.objects.filter(client=client, user=user).exists():
        details["linked"] = False
    audit(
        AuditAction.SCIM_USER_DEACTIVATED if not active else AuditAction.SCIM_USER_REACTIVATED,
        by=writer.by,
        target=user,
        details=details,
    )


def user_remove(*, client: Client, user: User, by: Actor) -> None:
    """DELETE /Users/<id>: the account service's delete (sessions and tokens
    end, the audit trail keeps the history). Only an account this client
    provisioned or linked."""
    label, pk = user.email, user.pk
    # One access write, user_delete's (its lock, rules and invariant): the
    # link is checked and the deletion audited in the same transaction.
    with transaction.atomic():
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


@dataclass
class GroupChange:
    """What a PATCH /Groups/<id> asks, read from its operations in order
    (scim.views): None leaves a value as it is. Members are a change, not a
    list: `add` and `remove` touch only those members, so a PATCH costs the
    same whatever the group's size; `replace` (a PUT, a replace or a remove
    of all members) makes the list exactly that."""

    display_name: str | None = None
    external_id: str | None = None
    add: set[int] = field(default_factory=set)
    remove: set[int] = field(default_factory=set)
    replace: set[int] | None = None

    def adding(self, ids) -> None:
        ids = set(ids)
        if self.replace is not None:
            self.replace |= ids
        else:
            self.add |= ids
            self.remove -= ids

    def removing(self, ids) -> None:
        ids = set(ids)
        if self.replace is not None:
            self.replace -= ids
        else:
            self.remove |= ids
            self.add -= ids

    def replacing(self, ids) -> None:
        self.replace, self.add, self.remove = set(ids), set(), set()


def _clean_display_name(value: str) -> str:
    value = (value or "").strip()
    if not value or len(value) > 255 or not value.isprintable():
        raise AccountError("displayName must be 1 to 255 printable characters.")
    return value


def _members(client: Client, user_ids: set[int], writer) -> list[Account]:
    """The client's accounts of these users, adopting (`_adopt`) those it
    has not linked yet. One it may not adopt (beyond its rights or rank,
    or holding local credentials) is left out of the group, and audited.
    Its queries do not depend on the size of any group."""
    if not user_ids:
        return []
    users = {u.pk: u for u in User.objects.people().filter(pk__in=user_ids)}
    unknown = sorted(set(user_ids) - users.keys())
    if unknown:
        raise AccountError(f"No user with id {', '.join(map(str, unknown))}.", field="members")
    linked = {
        a.user_id: a
        for a in Account.objects.filter(client=client, user__in=users).select_related("user")
    }
    members = []
    for pk in sorted(users):
        if pk in linked:
            members.append(linked[pk])
            continue
        try:
            members.append(
                _adopt(client=client, user=users[pk], writer=writer, matched="group member")
            )
        except AccessRefused as refused:
            # A link is a write (users:edit's), and not of an account above the client.
            right = refused.reason == "right"
            why = {"right": EDIT} if right else {"link": refused.resources}
            _sync_refused(client, writer.by, users[pk], why)
        except AdoptionRefused as refused:
            _sync_refused(client, writer.by, users[pk], {"credentials": refused.credentials})
    return members


def _sync_refused(client: Client, by: Actor, user: User, refused: dict) -> None:
    audit(
        AuditAction.SCIM_GROUP_SYNC_REFUSED,
        by=by,
        target=user,
        success=False,
        details={"client": client.name, "refused": refused},
    )


def group_create(*, client: Client, data: GroupData, by: Actor) -> Group:
    name = _clean_display_name(data.display_name)
    with access_write(by=by, target_label=name) as writer:
        if Group.objects.filter(client=client, display_name__iexact=name).exists():
            raise AccountError(
                "A group with this displayName already exists.",
                field="displayName",
                code="name_taken",
            )
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


def group_write(*, client: Client, group: Group, data: GroupData, by: Actor) -> Group:
    """PUT /Groups/<id>: the whole group (its member list replaced)."""
    change = GroupChange(
        display_name=data.display_name, external_id=data.external_id, replace=data.member_ids
    )
    return group_patch(client=client, group=group, change=change, by=by)


def group_patch(*, client: Client, group: Group, change: GroupChange, by: Actor) -> Group:
    """PATCH (and PUT) /Groups/<id>: name, externalId and members; local
    groups follow for the members that changed. Applied to the group as read
    under the lock, so concurrent PATCHes each keep their effect. A PATCH
    that adds or removes members reads and writes only those members: the
    same SQL statements for a group of ten or of ten thousand (a rename
    re-syncs every member: the map is by name)."""
    with access_write(by=by, target_label=group.display_name) as writer:
        reload(group)
        name = group.display_name
        if change.display_name is not None:
            name = _clean_display_name(change.display_name)
        if name != group.display_name:
            clash = Group.objects.filter(client=client, display_name__iexact=name)
            if clash.exclude(pk=group.pk).exists():
                raise AccountError(
                    "A group with this displayName already exists.",
                    field="displayName",
                    code="name_taken",
                )
        external_id = group.external_id
        if change.external_id is not None:
            external_id = change.external_id.strip()
        if change.replace is not None:
            before = set(group.members.all())
            after = set(_members(client, change.replace, writer))
            added, removed = after - before, before - after
        else:
            wanted = _members(client, change.add, writer)
            present = set(
                group.members.filter(pk__in=[a.pk for a in wanted]).values_list("pk", flat=True)
            )
            added = {a for a in wanted if a.pk not in present}
            removed = set(group.members.filter(user_id__in=change.remove).select_related("user"))
        changed = {}
        renamed = name != group.display_name
        if renamed:
            changed["displayName"] = [group.display_name, name]
        if external_id != group.external_id:
            changed["externalId"] = [group.external_id, external_id]
        if added or removed:
            changed["members"] = {"added": len(added), "removed": len(removed)}
        if not changed:
            return group
        group.display_name, group.external_id = name, external_id
        group.save()
        if added:
            group.members.add(*added)
        if removed:
            group.members.remove(*removed)
        audit(
            AuditAction.SCIM_GROUP_UPDATED,
            by=by,
            target_type="scim group",
            target_id=group.pk,
            target_label=name,
            details={"client": client.name, "changed": changed},
        )
        accounts = added | removed
        if renamed:
            accounts |= set(group.members.select_related("user")) | removed
        _sync(client=client, writer=writer, accounts=accounts)
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


def _wanted(group_map: dict, scim_names) -> dict[str, int | None]:
    """{local group name: days or None} the SCIM groups ask for; where two
    ask for the same group, the longer wins (no end longest of all)."""
    wanted = {}
    for scim_name in scim_names:
        names, days = map_entry(group_map.get(scim_name, []))
        for name in names:
            if name in wanted and (wanted[name] is None or days is None):
                wanted[name] = None
            else:
                wanted[name] = max(days, wanted.get(name) or 0) if days else None
    return wanted


def _sync(*, client: Client, writer, accounts) -> None:
    """Bring each account's memberships from this client in line with its
    SCIM groups and the group map. Memberships given otherwise (by hand, by
    an SSO role map) are never touched. The rules are the Writer's, as at
    every door: groups are users:edit's (Writer.require), the account must
    not reach beyond the client (Writer.outranks), and a group given or
    taken away must lie within it (Writer.within); what they refuse is left
    as it is and audited, the rest is done.

    Privileged access (accounts.services.privileged): a membership of an
    eligible-only group is an eligibility, nothing until its member
    activates it at the screens. A group with `grant_approval` is never
    given here: the sync asks for it (one grant request, approved by a
    second admin) and withdraws the request when the SCIM group no longer
    holds the person. A time-bound map entry ("days") ends the membership
    that many days after it is made; later syncs do not lengthen it."""
    accounts = list(accounts)
    if not accounts:
        return
    by = writer.by
    group_map = client.group_map
    source = client.source
    for account in accounts:
        user = account.user
        scim_names = account.groups.values_list("display_name", flat=True)
        days_of = _wanted(group_map, scim_names)
        wanted = {g.pk: g for g in LocalGroup.objects.filter(name__in=list(days_of))}
        privileged.grant_requests_withdraw(user=user, source=source, keep=set(wanted), by=by)
        current = {m.group_id: m for m in user.memberships.select_related("group")}
        adding = [g for pk, g in wanted.items() if pk not in current]
        removing = [m.group for pk, m in current.items() if m.source == source and pk not in wanted]
        if not adding and not removing:
            continue
        refused = {}
        try:
            writer.require(EDIT, "change groups")
            writer.outranks(user)
        except AccessRefused as refusal:
            # groups are users:edit's, at every door; rank over the account
            right = refusal.reason == "right"
            refused = {"right": EDIT} if right else {"rank": refusal.resources}
            adding, removing = [], []
        for kept, key in ((adding, "give"), (removing, "take_away")):
            for group in writer.groups_beyond(kept):  # beyond the client: left out
                refused.setdefault(key, []).append(group.name)
                kept.remove(group)
        if refused:
            _sync_refused(client, by, user, refused)
        now = timezone.now()
        end_of = {
            g.pk: now + timedelta(days=days_of[g.name]) if days_of.get(g.name) else None
            for g in adding
        }
        for group in [g for g in adding if g.grant_approval]:
            adding.remove(group)
            privileged.grant_request_from_source(
                user=user,
                group=group,
                ends_at=end_of[group.pk],
                source=source,
                by=by,
                writer=writer,
            )
        if not adding and not removing:
            continue
        Membership.objects.bulk_create(
            [Membership(user=user, group=g, source=source, ends_at=end_of[g.pk]) for g in adding]
        )
        Membership.objects.filter(
            user=user, source=source, group__in=[g.pk for g in removing]
        ).delete()
        access.changed(User.objects.filter(pk=user.pk))
        timed = {g.name: end_of[g.pk].isoformat() for g in adding if end_of[g.pk]}
        audit(
            AuditAction.SCIM_GROUPS_SYNCED,
            by=by,
            target=user,
            details={
                "client": client.name,
                "added": sorted(g.name for g in adding),
                "removed": sorted(g.name for g in removing),
                **({"ends": timed} if timed else {}),
            },
        )


def address_manager(user) -> str | None:
    """Who keeps the address of an account a SCIM client provisioned or
    linked: that client (its provider vouches for the address; the screens
    and the API leave it alone)."""
    names = sorted(
        Account.objects.filter(user=user, client__revoked_at=None).values_list(
            "client__name", flat=True
        )
    )
    if not names:
        return None
    return _("the provisioning (SCIM) client %(name)s") % {"name": ", ".join(names)}
