"""Groups: create, rename, give and take away roles, delete.

Writes run in `accounts.delegation.access_write` (the delegation rules)."""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction

from accounts import access, extensions
from accounts.audit import Actor, AuditAction, audit
from accounts.delegation import access_write, group_scopes, role_scopes
from accounts.errors import AccountError
from accounts.models import Group, Role, User
from accounts.services.common import (
    ROOT_GROUP,
    changes,
    clean_label,
    delete_audited,
    reload,
    still_there,
)


def configured_group_names() -> dict[str, str]:
    """Groups the configuration names, each with where: root, the SSO default
    group, the MFA-required groups and the SSO role maps' targets. Renaming
    or deleting one would silently change what the configuration means."""
    found = dict.fromkeys(
        extensions.configured_group_names(), "is named in an SSO ROLE_MAP or a SCIM group map"
    )
    found.update(
        dict.fromkeys(settings.IAM_MFA_REQUIRED_GROUPS, "is named in IAM_MFA_REQUIRED_GROUPS")
    )
    found.update({ROOT_GROUP: "is built in", settings.IAM_SSO_DEFAULT_GROUP: "is built in"})
    return found


def _roles_scope(roles) -> frozenset[str]:
    scopes = role_scopes([r.pk for r in roles])
    return frozenset().union(*(scopes.get(r.pk, frozenset()) for r in roles))


def group_create(*, name, description="", roles=(), by: Actor) -> Group:
    name = clean_label(name, "Name")
    roles = list(roles)
    with access_write(by=by, target_label=name) as writer:
        writer.require("backoffice:groups:create", "create groups")
        # Under the lock: two admins naming a group alike cannot both pass.
        if Group.objects.filter(name__iexact=name).exists():
            raise AccountError(f"A group named {name} already exists.")
        still_there(Role, roles)
        for role in roles:
            writer.within(_roles_scope([role]), f"give role {role.name}")
        try:
            with transaction.atomic():
                group = Group.objects.create(name=name, description=(description or "").strip())
        except IntegrityError:
            raise AccountError(f"A group named {name} already exists.") from None
        group.roles.set(roles)
        audit(
            AuditAction.GROUP_CREATED,
            by=by,
            target=group,
            details={"name": name, "roles": sorted(r.name for r in roles)},
        )
    return group


def group_update(*, group: Group, name, description, roles, by: Actor) -> Group:
    """Rename, describe, give and take away roles. The group must lie within
    the actor's permissions before and after, so every role given or taken
    away does too."""
    name = clean_label(name, "Name")
    roles = list(roles)
    with access_write(by=by, target=group) as writer:
        reload(group)
        configured = configured_group_names().get(group.name)
        if name != group.name and configured:
            raise AccountError(f"Group {group.name} {configured} and cannot be renamed.")
        if Group.objects.filter(name__iexact=name).exclude(pk=group.pk).exists():
            raise AccountError(f"A group named {name} already exists.")
        writer.require("backoffice:groups:edit", "edit groups")
        current = list(group.roles.all())
        writer.within(_roles_scope(current), f"change group {group.name}")
        changed = sorted(set(roles) ^ set(current), key=lambda r: r.name)
        still_there(Role, changed)
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
        changed_fields = changes(before, after)
        if changed_fields:
            audit(AuditAction.GROUP_UPDATED, by=by, target=group, details=changed_fields)
    return group


def group_delete(*, group: Group, by: Actor) -> None:
    configured = configured_group_names().get(group.name)
    if configured:
        raise AccountError(f"Group {group.name} {configured} and cannot be deleted.")
    with access_write(by=by, target=group) as writer:
        reload(group)
        writer.require("backoffice:groups:delete", "delete groups")
        writer.within(
            group_scopes([group.pk]).get(group.pk, frozenset()), f"delete group {group.name}"
        )
        members = group.memberships.count()
        if members:
            raise AccountError(
                f"Group {group.name} still has {members} member(s); remove them from it first."
            )
        delete_audited(group, by=by)
