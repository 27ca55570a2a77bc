"""Writes about accounts, groups and roles.

Each function is one action: it checks its rules, changes the data in one
transaction and writes its audit event with what changed (never a password).
A refused action raises AccountError with a message fit for a form or the
command line, and changes nothing.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from accounts import throttle
from accounts.access import compile_rules
from accounts.audit import audit
from accounts.models import Group, Membership, Role, Rule, User, normalize_email
from accounts.selectors import user_get_by_email

ROOT_GROUP = "root"
# What the root group must always be able to do, or nobody could repair access.
ROOT_MUST_ALLOW = ("backoffice:users:edit", "backoffice:groups:edit", "backoffice:roles:edit")


class AccountError(Exception):
    """A request that cannot be carried out; the message is shown to people."""


# --- helpers -----------------------------------------------------------------


def _clean_name(value: str, label: str) -> str:
    value = (value or "").replace("\x00", "").strip()
    if not value:
        raise AccountError(f"{label} is required.")
    if len(value) > 150:
        raise AccountError(f"{label} must be at most 150 characters.")
    return value


def _clean_email(email: str, *, exclude_pk=None) -> str:
    email = normalize_email(email)
    try:
        if "\x00" in email:
            raise ValidationError("NUL")
        validate_email(email)
    except ValidationError:
        raise AccountError(f"'{email}' is not a valid email address.") from None
    existing = user_get_by_email(email)
    if existing is not None and existing.pk != exclude_pk:
        raise AccountError(f"A user with email {email} already exists.")
    return email


def _validate_password(password: str, user: User) -> None:
    try:
        password_validation.validate_password(password, user=user)
    except ValidationError as exc:
        raise AccountError(" ".join(exc.messages)) from None


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


def _lock_root_members() -> list[int]:
    """Active members of root, locked for this transaction, so two admins
    cannot each remove "the other" last root at the same moment."""
    return list(
        User.objects.select_for_update()
        .filter(memberships__group__name=ROOT_GROUP, status=User.Status.ACTIVE)
        .values_list("pk", flat=True)
    )


def _guard_root(user: User, *, actor: User | None, losing: str) -> None:
    """Refuse to take `user` out of working root membership (block, delete or
    removal from root) when it is the actor themself or the last active root."""
    if not user.memberships.filter(group__name=ROOT_GROUP).exists():
        return
    if actor is not None and actor.pk == user.pk:
        raise AccountError(f"You cannot {losing} yourself while you are in group root.")
    active_roots = _lock_root_members()
    if user.is_active and active_roots == [user.pk]:
        raise AccountError(
            f"{user.email} is the last active member of root and cannot be {_PAST[losing]}."
        )


_PAST = {"block": "blocked", "delete": "deleted", "remove from root": "removed from root"}


# --- users -------------------------------------------------------------------


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
) -> User:
    """Create an account. No password means an unusable one (the person sets
    it through a link, or logs in by SSO)."""
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
    try:
        with transaction.atomic():
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
    """Edit names, email, groups and status in one go."""
    before = _user_snapshot(user)
    new_email = _clean_email(email, exclude_pk=user.pk)
    first_name = _clean_name(first_name, "First name")
    last_name = _clean_name(last_name, "Last name")
    wanted = {g.pk: g for g in groups}
    with transaction.atomic():
        current = {m.group_id: m for m in user.memberships.select_related("group")}
        removing = [m for gid, m in current.items() if gid not in wanted]
        if any(m.group.name == ROOT_GROUP for m in removing):
            _guard_root(user, actor=actor, losing="remove from root")
        if not active and user.is_active:
            _guard_root(user, actor=actor, losing="block")
        user.email = new_email
        user.first_name = first_name
        user.last_name = last_name
        user.status = User.Status.ACTIVE if active else User.Status.BLOCKED
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:
            raise AccountError(f"A user with email {new_email} already exists.") from None
        Membership.objects.filter(pk__in=[m.pk for m in removing]).delete()
        Membership.objects.bulk_create(
            [Membership(user=user, group=g) for gid, g in wanted.items() if gid not in current]
        )
        changes = _changes(before, _user_snapshot(user))
        if before["email"] != new_email:
            _forget_other_addresses(user)
        if changes:
            audit("user.updated", request=request, actor=actor, target=user, details=changes)
        if before["status"] != user.status:
            _status_changed(user, actor=actor, request=request)
    _acl_changed()
    return user


def _forget_other_addresses(user: User) -> None:
    """allauth also logs in by the addresses in its EmailAddress table; the
    account's email field is the only login we allow."""
    from allauth.account.models import EmailAddress

    EmailAddress.objects.filter(user=user).exclude(email__iexact=user.email).delete()


def user_set_status(*, user: User, active: bool, actor: User | None, request=None) -> User:
    """Block (ends every session of the user at once) or unblock."""
    if user.is_active == active:
        return user
    with transaction.atomic():
        if not active:
            _guard_root(user, actor=actor, losing="block")
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
    details = {"status": ["active", "blocked"], "sessions_ended": ended}
    audit("user.blocked", request=request, actor=actor, target=user, details=details)


def user_delete(*, user: User, actor: User | None, request=None) -> None:
    """Delete the account; its audit events keep the email they were about."""
    with transaction.atomic():
        _guard_root(user, actor=actor, losing="delete")
        snapshot = _user_snapshot(user)
        user_sessions_end(user)
        _delete_audited(user, actor=actor, request=request, details={"deleted": snapshot})
    _acl_changed()


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
    from allauth.account.adapter import get_adapter
    from allauth.account.utils import user_pk_to_url_str
    from django.urls import reverse

    from accounts.tokens import InvitationTokens, PasswordResetTokens

    if not user.is_active:
        raise AccountError(f"{user.email} is blocked: unblock the account first.")
    tokens = InvitationTokens() if invitation else PasswordResetTokens()
    path = reverse(
        "account_reset_password_from_key",
        kwargs={"uidb36": user_pk_to_url_str(user), "key": tokens.make_token(user)},
    )
    context = {"user": user, "password_reset_url": request.build_absolute_uri(path)}
    template = "account/email/invitation" if invitation else "account/email/password_reset_key"
    get_adapter(request).send_mail(template, user.email, context)
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
    audit(action, request=request, actor=user, target=user, details={"sessions_ended": ended})


def user_mfa_reset(*, user: User, actor: User, request=None) -> int:
    """An admin removes a user's authenticators (lost phone); the user sets
    MFA up again at next login if their group requires it."""
    from allauth.mfa.models import Authenticator

    with transaction.atomic():
        types = sorted(Authenticator.objects.filter(user=user).values_list("type", flat=True))
        if not types:
            raise AccountError(f"{user.email} has no MFA to reset.")
        Authenticator.objects.filter(user=user).delete()
        audit("mfa.reset", request=request, actor=actor, target=user, details={"removed": types})
    return len(types)


# --- groups ------------------------------------------------------------------


def _protected_group_names() -> set[str]:
    return {ROOT_GROUP, settings.IAM_SSO_DEFAULT_GROUP}


def _clean_label(value: str, label: str, max_length: int = 100) -> str:
    value = (value or "").strip()
    if not value:
        raise AccountError(f"{label} is required.")
    if len(value) > max_length:
        raise AccountError(f"{label} must be at most {max_length} characters.")
    return value


def _root_keeps_full_access(roles) -> None:
    rules = Rule.objects.filter(role__in=roles).values_list("effect", "pattern")
    compiled = compile_rules(rules)
    if not all(compiled.permits(r) for r in ROOT_MUST_ALLOW):
        raise AccountError(
            "Group root must keep a role that allows managing users, groups and roles; "
            "otherwise nobody could repair access."
        )


def group_create(*, name, description="", roles=(), actor, request=None) -> Group:
    name = _clean_label(name, "Name")
    if Group.objects.filter(name__iexact=name).exists():
        raise AccountError(f"A group named {name} already exists.")
    with transaction.atomic():
        group = Group.objects.create(name=name, description=(description or "").strip())
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
    name = _clean_label(name, "Name")
    if name != group.name and group.name in _protected_group_names():
        raise AccountError(f"Group {group.name} is built in and cannot be renamed.")
    if Group.objects.filter(name__iexact=name).exclude(pk=group.pk).exists():
        raise AccountError(f"A group named {name} already exists.")
    if group.name == ROOT_GROUP:
        _root_keeps_full_access(roles)
    before = {
        "name": group.name,
        "description": group.description,
        "roles": sorted(group.roles.values_list("name", flat=True)),
    }
    with transaction.atomic():
        group.name, group.description = name, (description or "").strip()
        group.save()
        group.roles.set(roles)
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
    if group.name in _protected_group_names():
        raise AccountError(f"Group {group.name} is built in and cannot be deleted.")
    members = group.memberships.count()
    if members:
        raise AccountError(
            f"Group {group.name} still has {members} member(s); remove them from it first."
        )
    with transaction.atomic():
        _delete_audited(group, actor=actor, request=request)


# --- roles -------------------------------------------------------------------


def parse_rules(text: str) -> list[tuple[str, str]]:
    """Rules typed one per line: `allow backoffice:users:*`. Blank lines and
    `#` comments are skipped; every bad line is named in one error."""
    from accounts.resources import split_resource

    rules, errors = [], []
    for number, raw in enumerate((text or "").splitlines(), start=1):
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
        rule = (parts[0].lower(), parts[1])
        if rule not in rules:
            rules.append(rule)
    if errors:
        raise AccountError("; ".join(errors) + ". Each part is a lower-case name or *.")
    return rules


def _rules_text(role: Role) -> list[str]:
    return [
        f"{effect} {pattern}" for effect, pattern in role.rules.values_list("effect", "pattern")
    ]


def role_create(*, name, description="", rules=(), actor, request=None) -> Role:
    name = _clean_label(name, "Name")
    if Role.objects.filter(name__iexact=name).exists():
        raise AccountError(f"A role named {name} already exists.")
    with transaction.atomic():
        role = Role.objects.create(name=name, description=(description or "").strip())
        Rule.objects.bulk_create([Rule(role=role, effect=e, pattern=p) for e, p in rules])
        audit(
            "role.created",
            request=request,
            actor=actor,
            target=role,
            details={"name": name, "rules": [f"{e} {p}" for e, p in rules]},
        )
    _acl_changed()
    return role


def role_update(*, role: Role, name, description, rules, actor, request=None) -> Role:
    name = _clean_label(name, "Name")
    if Role.objects.filter(name__iexact=name).exclude(pk=role.pk).exists():
        raise AccountError(f"A role named {name} already exists.")
    before = {"name": role.name, "description": role.description, "rules": _rules_text(role)}
    with transaction.atomic():
        role.name, role.description = name, (description or "").strip()
        role.save()
        role.rules.all().delete()
        Rule.objects.bulk_create([Rule(role=role, effect=e, pattern=p) for e, p in rules])
        root = Group.objects.filter(name=ROOT_GROUP).first()
        if root is not None and root.roles.filter(pk=role.pk).exists():
            _root_keeps_full_access(root.roles.all())
        changes = _changes(
            before, {"name": name, "description": role.description, "rules": _rules_text(role)}
        )
        if changes:
            audit("role.updated", request=request, actor=actor, target=role, details=changes)
    _acl_changed()
    return role


def role_delete(*, role: Role, actor, request=None) -> None:
    groups = sorted(role.groups.values_list("name", flat=True))
    if groups:
        raise AccountError(
            f"Role {role.name} is given to group(s) {', '.join(groups)}; "
            "take it away from them first."
        )
    with transaction.atomic():
        _delete_audited(role, actor=actor, request=request)
    _acl_changed()


def _acl_changed() -> None:
    """bulk_create and queryset deletes send no model signals: say it here."""
    from accounts.access import invalidate_now_and_on_commit

    invalidate_now_and_on_commit()
