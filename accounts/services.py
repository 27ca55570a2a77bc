"""Writes about accounts, groups and roles.

Each function is one action: it checks its rules, changes the data in one
transaction and writes its audit event with what changed (never a password).
A refused action raises AccountError with a message fit for a form or the
command line, and changes nothing. Writes that can change who may do what run
in `accounts.delegation.access_write`, which owns the delegation rules (an
admin gives only what they hold; access can always be repaired); `actor=None`
is an operator (the command line, SSO configuration), trusted like root.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts import access, extensions, throttle
from accounts.audit import audit
from accounts.delegation import (
    access_write,
    group_scopes,
    role_scopes,
    scope_of,
)
from accounts.errors import AccessRefused, AccountError
from accounts.inputs import clean_email, clean_name
from accounts.models import Group, Membership, Role, Rule, User
from accounts.resources import REGISTRY, matching, split_resource
from accounts.selectors import user_get_by_email

__all__ = ["AccessRefused", "AccountError"]  # the refusals callers catch come from here too

ROOT_GROUP = "root"
MAX_RULE_LINES = 200


# --- helpers -----------------------------------------------------------------


def _clean_name(value: str, label: str) -> str:
    return clean_name(value, label)


def _clean_email(email: str, *, exclude_pk=None) -> str:
    email = clean_email(email)
    existing = user_get_by_email(email)
    if existing is not None and existing.pk != exclude_pk:
        raise AccountError(f"A user with email {email} already exists.")
    return email


def _validate_password(password: str, user: User) -> None:
    try:
        password_validation.validate_password(password, user=user)
    except ValidationError as exc:
        raise AccountError(" ".join(exc.messages)) from None


def _reload(obj) -> None:
    """Read the stored row again under the access lock (another admin may
    have changed or deleted it since the page was loaded)."""
    try:
        obj.refresh_from_db()
    except obj.DoesNotExist:
        raise AccountError(f"This {obj._meta.verbose_name} no longer exists.") from None


def _changes(before: dict, after: dict) -> dict:
    """{field: [before, after]} for the fields that differ."""
    return {k: [before.get(k), after.get(k)] for k in after if before.get(k) != after.get(k)}


def _user_snapshot(user: User) -> dict:
    return {
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "status": user.status,
        "groups": sorted(user.groups.values_list("name", flat=True)) if user.pk else [],
    }


def _delete_audited(obj, *, actor, request, details=None) -> None:
    """Delete a user, group or role and record it; the event keeps the
    object's type, id and name, since the row itself is gone."""
    kind, pk, label = obj._meta.model_name, obj.pk, str(obj)
    obj.delete()
    audit(
        f"{kind}.deleted",
        request=request,
        actor=actor,
        target_type=kind,
        target_id=pk,
        target_label=label,
        details=details,
    )


# --- users -------------------------------------------------------------------


def _still_there(model, objs) -> None:
    """Groups or roles picked on a page may have been deleted since: say so
    (instead of a database error at commit)."""
    wanted = {obj.pk for obj in objs}
    found = set(model.objects.filter(pk__in=wanted).values_list("pk", flat=True))
    gone = sorted(str(obj) for obj in objs if obj.pk not in found)
    if gone:
        kind = model._meta.verbose_name
        raise AccountError(f"The {kind} {', '.join(gone)} no longer exists; reload the page.")


def _groups_within(writer, groups, *, doing: str) -> None:
    """Grant bound on groups given or taken away: each one's scope."""
    scopes = group_scopes([g.pk for g in groups])
    for group in sorted(groups, key=lambda g: g.name):
        writer.within(scopes.get(group.pk, frozenset()), f"{doing} group {group.name}")


def user_create(
    *,
    email: str,
    first_name: str,
    last_name: str,
    password: str | None = None,
    groups: list[Group] | tuple = (),
    active: bool = True,
    actor: User | None = None,
    request=None,
    via: str = "screen",
    invite: bool = False,
) -> User:
    """Create an account. No password means an unusable one (the person sets
    it through a link, or logs in by SSO; `invite` mails that link, in the
    same write, so an account is never left without the invitation asked
    for). An admin may put it only in groups whose permissions they hold,
    and create it blocked only with users:block."""
    user = User(
        email=_clean_email(email),
        first_name=_clean_name(first_name, "First name"),
        last_name=_clean_name(last_name, "Last name"),
        status=User.Status.ACTIVE if active else User.Status.BLOCKED,
    )
    if password is not None:
        _validate_password(password, user)
        user.set_password(password)
    else:
        user.set_unusable_password()
    groups = list(groups)
    try:
        with access_write(actor=actor, request=request, target_label=user.email) as writer:
            writer.require("backoffice:users:create", "create accounts")
            if not active:
                writer.require("backoffice:users:block", "create a blocked account")
            _still_there(Group, groups)
            _groups_within(writer, groups, doing="give")
            user.save()
            Membership.objects.bulk_create(
                [Membership(user=user, group=g, source=Membership.MANUAL) for g in groups]
            )
            audit(
                "user.created",
                request=request,
                actor=actor,
                target=user,
                details={
                    "via": via,
                    "status": user.status,
                    "groups": sorted(g.name for g in groups),
                    "password": "set" if password is not None else "none",
                },
            )
            if invite:
                if not user.is_active:
                    raise AccountError("A blocked account cannot be sent an invitation.")
                _mail_password_link(user=user, invitation=True, actor=actor, request=request)
    except IntegrityError:
        # Lost a race with another creation of the same address.
        raise AccountError(f"A user with email {user.email} already exists.") from None
    return user


def user_update(
    *,
    user: User,
    email: str,
    first_name: str,
    last_name: str,
    groups: list[Group],
    active: bool,
    actor: User | None,
    request=None,
) -> User:
    """Edit names, email, groups and status in one go. Each kind of change
    needs its own right (status: users:block; the rest: users:edit), the
    account must not hold more than the actor, and every group given or
    taken away must lie within the actor's permissions."""
    new_email = _clean_email(email, exclude_pk=user.pk)
    first_name = _clean_name(first_name, "First name")
    last_name = _clean_name(last_name, "Last name")
    wanted = {g.pk: g for g in groups}
    status = User.Status.ACTIVE if active else User.Status.BLOCKED
    with access_write(actor=actor, request=request, target=user) as writer:
        _reload(user)
        before = _user_snapshot(user)
        current = {m.group_id: m for m in user.memberships.select_related("group")}
        removing = [m for gid, m in current.items() if gid not in wanted]
        adding = [g for gid, g in wanted.items() if gid not in current]
        writer.outranks(user)
        if (new_email, first_name, last_name) != (user.email, user.first_name, user.last_name):
            writer.require("backoffice:users:edit", "change names or email")
        if adding or removing:
            writer.require("backoffice:users:edit", "change groups")
            _still_there(Group, adding)
            _groups_within(writer, adding, doing="give")
            _groups_within(writer, [m.group for m in removing], doing="take away")
        if status != user.status:
            writer.require("backoffice:users:block", "block or unblock accounts")
            if status == User.Status.BLOCKED:
                writer.not_self(user, "block")
        user.email, user.first_name, user.last_name = new_email, first_name, last_name
        user.status = status
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:
            raise AccountError(f"A user with email {new_email} already exists.") from None
        Membership.objects.filter(pk__in=[m.pk for m in removing]).delete()
        Membership.objects.bulk_create([Membership(user=user, group=g) for g in adding])
        if adding or removing:
            access.changed(User.objects.filter(pk=user.pk))
        changes = _changes(before, _user_snapshot(user))
        if before["email"] != new_email:
            _forget_other_addresses(user)
        if changes:
            audit("user.updated", request=request, actor=actor, target=user, details=changes)
        if before["status"] != user.status:
            _status_changed(user, actor=actor, request=request)
    return user


def _forget_other_addresses(user: User) -> None:
    """allauth also logs in by the addresses in its EmailAddress table; the
    account's email field is the only login we allow."""
    from allauth.account.models import EmailAddress

    EmailAddress.objects.filter(user=user).exclude(email__iexact=user.email).delete()


def user_set_status(*, user: User, active: bool, actor: User | None, request=None) -> User:
    """Block (ends every session of the user at once) or unblock."""
    with access_write(actor=actor, request=request, target=user) as writer:
        _reload(user)
        writer.require("backoffice:users:block", "block or unblock accounts")
        writer.outranks(user)
        if user.is_active == active:
            return user
        if not active:
            writer.not_self(user, "block")
        user.status = User.Status.ACTIVE if active else User.Status.BLOCKED
        user.save(update_fields=["status", "updated_at"])
        _status_changed(user, actor=actor, request=request)
    return user


def _status_changed(user: User, *, actor, request) -> None:
    """After a status change: a blocked user's sessions end at once."""
    if user.is_active:
        details = {"status": ["blocked", "active"]}
        audit("user.unblocked", request=request, actor=actor, target=user, details=details)
        return
    ended = user_sessions_end(user)
    extensions.account_disabled(user, reason="blocked", request=request)
    details = {"status": ["active", "blocked"], "sessions_ended": ended}
    audit("user.blocked", request=request, actor=actor, target=user, details=details)


def user_delete(*, user: User, actor: User | None, request=None) -> None:
    """Delete the account; its audit events keep the email they were about."""
    with access_write(actor=actor, request=request, target=user) as writer:
        _reload(user)  # deleted meanwhile by someone else: said once, not twice
        writer.require("backoffice:users:delete", "delete accounts")
        writer.outranks(user)
        writer.not_self(user, "delete")
        snapshot = _user_snapshot(user)
        user_sessions_end(user)
        extensions.account_disabled(user, reason="deleted", request=request)
        _delete_audited(user, actor=actor, request=request, details={"deleted": snapshot})


def user_sessions_end(user: User, *, keep_session_key: str | None = None) -> int:
    """End the user's server-side sessions (all but `keep_session_key`).
    Returns how many were ended."""
    from allauth.usersessions.adapter import get_adapter
    from allauth.usersessions.models import UserSession

    live, stale = [], []
    for session in UserSession.objects.filter(user=user).exclude(session_key=keep_session_key):
        (live if session.exists() else stale).append(session)
    UserSession.objects.filter(pk__in=[s.pk for s in stale]).delete()
    get_adapter().end_sessions(live)
    return len(live)


def user_send_password_link(*, user: User, invitation: bool, actor: User | None, request) -> None:
    """Mail a link to choose a password: a reset (valid 1 hour) or, for a new
    account, an invitation (valid 72 hours)."""
    with access_write(actor=actor, request=request, target=user) as writer:
        if invitation:
            writer.require("backoffice:users:create", "invite new accounts")
        else:
            writer.require("backoffice:users:reset-password", "send password resets")
        writer.outranks(user)
        if not user.is_active:
            raise AccountError(f"{user.email} is blocked: unblock the account first.")
        _mail_password_link(user=user, invitation=invitation, actor=actor, request=request)


def _mail_password_link(*, user: User, invitation: bool, actor, request) -> None:
    """The link's mail and its audit event, as part of the write. The mail is
    queued; the worker makes the link when it sends (accounts.mail)."""
    from accounts import mail

    kind = "invitation" if invitation else "password_reset"
    mail.queue_password_link(request=request, user=user, kind=kind)
    action = "user.invited" if invitation else "password.reset.requested"
    audit(action, request=request, actor=actor, target=user, details={"by": "admin"})


def password_reset_completed(*, request, user: User) -> None:
    """After a reset by link every other session of the user ends: whoever
    knew the old password is out, and the account's failed-login lock is
    lifted (the owner has just proved it by mail)."""
    keep = request.session.session_key if request.user == user else None
    _password_replaced("password.reset.completed", request=request, user=user, keep=keep)
    throttle.clear(request, "login_failed", throttle.account_key(user.email))


def password_changed_by_user(*, request, user: User) -> None:
    """Own password changed: this session stays, every other one ends."""
    keep = request.session.session_key
    _password_replaced("password.changed", request=request, user=user, keep=keep)


def _password_replaced(action: str, *, request, user: User, keep: str | None) -> None:
    ended = user_sessions_end(user, keep_session_key=keep)
    extensions.credentials_replaced(user, reason=action, request=request)
    audit(action, request=request, actor=user, target=user, details={"sessions_ended": ended})


def user_mfa_reset(*, user: User, actor: User, request=None) -> int:
    """An admin removes a user's authenticators (lost phone); the user sets
    MFA up again at next login if their group requires it."""
    from allauth.mfa.models import Authenticator

    with access_write(actor=actor, request=request, target=user) as writer:
        writer.require("backoffice:users:reset-mfa", "reset MFA")
        writer.outranks(user)
        types = sorted(Authenticator.objects.filter(user=user).values_list("type", flat=True))
        if not types:
            raise AccountError(f"{user.email} has no MFA to reset.")
        Authenticator.objects.filter(user=user).delete()
        audit("mfa.reset", request=request, actor=actor, target=user, details={"removed": types})
    return len(types)


# --- groups ------------------------------------------------------------------


def configured_group_names() -> dict[str, str]:
    """Groups the configuration names, each with where: root, the SSO default
    group, the MFA-required groups and the SSO role maps' targets. Renaming
    or deleting one would silently change what the configuration means."""
    found = dict.fromkeys(extensions.configured_group_names(), "is named in an SSO ROLE_MAP")
    found.update(
        dict.fromkeys(settings.IAM_MFA_REQUIRED_GROUPS, "is named in IAM_MFA_REQUIRED_GROUPS")
    )
    found.update({ROOT_GROUP: "is built in", settings.IAM_SSO_DEFAULT_GROUP: "is built in"})
    return found


def _clean_label(value: str, label: str, max_length: int = 100) -> str:
    value = (value or "").strip()
    if not value:
        raise AccountError(f"{label} is required.")
    if len(value) > max_length:
        raise AccountError(f"{label} must be at most {max_length} characters.")
    return value


def _roles_scope(roles) -> frozenset[str]:
    scopes = role_scopes([r.pk for r in roles])
    return frozenset().union(*(scopes.get(r.pk, frozenset()) for r in roles))


def group_create(*, name, description="", roles=(), actor, request=None) -> Group:
    name = _clean_label(name, "Name")
    roles = list(roles)
    with access_write(actor=actor, request=request, target_label=name) as writer:
        writer.require("backoffice:groups:create", "create groups")
        # Under the lock: two admins naming a group alike cannot both pass.
        if Group.objects.filter(name__iexact=name).exists():
            raise AccountError(f"A group named {name} already exists.")
        _still_there(Role, roles)
        for role in roles:
            writer.within(_roles_scope([role]), f"give role {role.name}")
        try:
            with transaction.atomic():
                group = Group.objects.create(name=name, description=(description or "").strip())
        except IntegrityError:
            raise AccountError(f"A group named {name} already exists.") from None
        group.roles.set(roles)
        audit(
            "group.created",
            request=request,
            actor=actor,
            target=group,
            details={"name": name, "roles": sorted(r.name for r in roles)},
        )
    return group


def group_update(*, group: Group, name, description, roles, actor, request=None) -> Group:
    """Rename, describe, give and take away roles. The group must lie within
    the actor's permissions before and after, so every role given or taken
    away does too."""
    name = _clean_label(name, "Name")
    roles = list(roles)
    with access_write(actor=actor, request=request, target=group) as writer:
        _reload(group)
        configured = configured_group_names().get(group.name)
        if name != group.name and configured:
            raise AccountError(f"Group {group.name} {configured} and cannot be renamed.")
        if Group.objects.filter(name__iexact=name).exclude(pk=group.pk).exists():
            raise AccountError(f"A group named {name} already exists.")
        writer.require("backoffice:groups:edit", "edit groups")
        current = list(group.roles.all())
        writer.within(_roles_scope(current), f"change group {group.name}")
        changed = sorted(set(roles) ^ set(current), key=lambda r: r.name)
        _still_there(Role, changed)
        for role in changed:
            writer.within(_roles_scope([role]), f"give or take away role {role.name}")
        if changed:
            writer.outranks_members([group.pk], f"change the roles of group {group.name}")
        before = {
            "name": group.name,
            "description": group.description,
            "roles": sorted(r.name for r in current),
        }
        group.name, group.description = name, (description or "").strip()
        group.save()
        group.roles.set(roles)
        if changed:
            access.changed(User.objects.filter(memberships__group=group))
        after = {
            "name": group.name,
            "description": group.description,
            "roles": sorted(r.name for r in roles),
        }
        changes = _changes(before, after)
        if changes:
            audit("group.updated", request=request, actor=actor, target=group, details=changes)
    return group


def group_delete(*, group: Group, actor, request=None) -> None:
    configured = configured_group_names().get(group.name)
    if configured:
        raise AccountError(f"Group {group.name} {configured} and cannot be deleted.")
    with access_write(actor=actor, request=request, target=group) as writer:
        _reload(group)
        writer.require("backoffice:groups:delete", "delete groups")
        writer.within(
            group_scopes([group.pk]).get(group.pk, frozenset()), f"delete group {group.name}"
        )
        members = group.memberships.count()
        if members:
            raise AccountError(
                f"Group {group.name} still has {members} member(s); remove them from it first."
            )
        _delete_audited(group, actor=actor, request=request)


# --- roles -------------------------------------------------------------------


def parse_rules(text: str) -> list[tuple[str, str]]:
    """Rules typed one per line: `allow backoffice:users:*`. Blank lines and
    `#` comments are skipped; every bad line is named in one error. A pattern
    must match at least one resource that exists (a typo would grant nothing
    and look as if it did)."""
    lines = (text or "").splitlines()
    if len(lines) > MAX_RULE_LINES:
        raise AccountError(f"A role holds at most {MAX_RULE_LINES} lines of rules.")
    rules, errors = [], []
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2 or parts[0].lower() not in ("allow", "deny"):
            errors.append(f"line {number}: write 'allow PATTERN' or 'deny PATTERN'")
            continue
        try:
            split_resource(parts[1])
        except ValueError:
            errors.append(f"line {number}: '{parts[1][:60]}' is not area:screen:action")
            continue
        if not matching(parts[1]):
            errors.append(f"line {number}: '{parts[1][:60]}' matches no resource that exists")
            continue
        rule = (parts[0].lower(), parts[1])
        if rule not in rules:
            rules.append(rule)
    if errors:
        raise AccountError(
            "; ".join(errors)
            + ". Each part is a lower-case name or *; the resources are "
            + ", ".join(REGISTRY)
            + "."
        )
    return rules


def _rules_of(role: Role) -> list[tuple[str, str]]:
    return list(role.rules.values_list("effect", "pattern"))


def role_create(*, name, description="", rules=(), actor, request=None) -> Role:
    name = _clean_label(name, "Name")
    rules = list(rules)
    with access_write(actor=actor, request=request, target_label=name) as writer:
        writer.require("backoffice:roles:create", "create roles")
        if Role.objects.filter(name__iexact=name).exists():
            raise AccountError(f"A role named {name} already exists.")
        writer.within(scope_of(rules), f"write the rules of role {name}")
        try:
            with transaction.atomic():
                role = Role.objects.create(name=name, description=(description or "").strip())
        except IntegrityError:
            raise AccountError(f"A role named {name} already exists.") from None
        Rule.objects.bulk_create([Rule(role=role, effect=e, pattern=p) for e, p in rules])
        audit(
            "role.created",
            request=request,
            actor=actor,
            target=role,
            details={"name": name, "rules": [f"{e} {p}" for e, p in rules]},
        )
    return role


def role_update(*, role: Role, name, description, rules, actor, request=None) -> Role:
    """Rename, describe and rewrite the rules. The role must lie within the
    actor's permissions before and after, so every rule added or removed does."""
    name = _clean_label(name, "Name")
    rules = list(rules)
    with access_write(actor=actor, request=request, target=role) as writer:
        _reload(role)
        if Role.objects.filter(name__iexact=name).exclude(pk=role.pk).exists():
            raise AccountError(f"A role named {name} already exists.")
        writer.require("backoffice:roles:edit", "edit roles")
        current = _rules_of(role)
        writer.within(scope_of(current), f"change role {role.name}")
        writer.within(scope_of(rules), f"write these rules in role {role.name}")
        if set(rules) != set(current):
            holders = list(role.groups.values_list("pk", flat=True))
            writer.outranks_members(holders, f"change the rules of role {role.name}")
        before = {
            "name": role.name,
            "description": role.description,
            "rules": [f"{e} {p}" for e, p in current],
        }
        role.name, role.description = name, (description or "").strip()
        role.save()
        role.rules.all().delete()
        Rule.objects.bulk_create([Rule(role=role, effect=e, pattern=p) for e, p in rules])
        access.changed(User.objects.filter(memberships__group__roles=role))
        after = {
            "name": name,
            "description": role.description,
            "rules": [f"{e} {p}" for e, p in _rules_of(role)],
        }
        changes = _changes(before, after)
        if changes:
            audit("role.updated", request=request, actor=actor, target=role, details=changes)
    return role


def role_delete(*, role: Role, actor, request=None) -> None:
    with access_write(actor=actor, request=request, target=role) as writer:
        _reload(role)
        writer.require("backoffice:roles:delete", "delete roles")
        writer.within(scope_of(_rules_of(role)), f"delete role {role.name}")
        groups = sorted(role.groups.values_list("name", flat=True))
        if groups:
            raise AccountError(
                f"Role {role.name} is given to group(s) {', '.join(groups)}; "
                "take it away from them first."
            )
        _delete_audited(role, actor=actor, request=request)
