"""Groups: create, rename, give and take away roles, delete.

Writes run in `accounts.delegation.access_write` (the delegation rules)."""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from accounts import access, extensions
from accounts.audit import Actor, AuditAction, audit
from accounts.delegation import access_write
from accounts.errors import AccountError
from accounts.models import Group, Role, User
from accounts.seeds import as_seeded
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
        extensions.configured_group_names(),
        gettext_noop("is named in an SSO ROLE_MAP or a SCIM group map"),
    )
    found.update(
        dict.fromkeys(
            settings.IAM_MFA_REQUIRED_GROUPS, gettext_noop("is named in IAM_MFA_REQUIRED_GROUPS")
        )
    )
    built_in = gettext_noop("is built in")
    found.update({ROOT_GROUP: built_in, settings.IAM_SSO_DEFAULT_GROUP: built_in})
    return found


POLICY = ("eligible_only", "max_activation_hours", "activation_approval", "grant_approval")
MAX_ACTIVATION_HOURS = 24 * 7


def _policy(policy: dict | None, group: Group | None = None) -> dict:
    """The privileged-access settings of a group (Group's docstring), each
    given or kept. An activation lasts 1 hour to a week."""
    wanted = {f: getattr(group, f) if group else Group._meta.get_field(f).default for f in POLICY}
    for key, value in (policy or {}).items():
        if key not in POLICY:
            raise AccountError(_("Unknown group setting %(name)s.") % {"name": key})
        if value is not None:
            wanted[key] = value
    try:
        hours = int(wanted["max_activation_hours"])
    except (TypeError, ValueError):
        hours = 0
    if not 1 <= hours <= MAX_ACTIVATION_HOURS:
        raise AccountError(
            _("The longest activation must be between 1 and %(max)d hours.")
            % {"max": MAX_ACTIVATION_HOURS},
            field="max_activation_hours",
        )
    wanted["max_activation_hours"] = hours
    for flag in ("eligible_only", "activation_approval", "grant_approval"):
        wanted[flag] = bool(wanted[flag])
    return wanted


def group_create(*, name, description="", roles=(), policy: dict | None = None, by: Actor) -> Group:
    """`policy`: the privileged-access settings (`POLICY`), defaults for
    the rest."""
    name = clean_label(name, "Name")
    roles = list(roles)
    policy = _policy(policy)
    with access_write(by=by, target_label=name) as writer:
        writer.require("backoffice:groups:create", "create groups")
        # Under the lock: two admins naming a group alike cannot both pass.
        if Group.objects.filter(name__iexact=name).exists():
            raise AccountError(
                _("A group named %(name)s already exists.") % {"name": name}, code="name_taken"
            )
        still_there(Role, roles)
        for role in roles:
            writer.within_roles([role], _("give role %(name)s") % {"name": role.name})
        try:
            with transaction.atomic():
                group = Group.objects.create(
                    name=name, description=(description or "").strip(), **policy
                )
        except IntegrityError:
            raise AccountError(
                _("A group named %(name)s already exists.") % {"name": name}, code="name_taken"
            ) from None
        group.roles.set(roles)
        audit(
            AuditAction.GROUP_CREATED,
            by=by,
            target=group,
            details={
                "name": name,
                "roles": sorted(r.name for r in roles),
                **_changed_policy(policy),
            },
        )
    return group


def _changed_policy(policy: dict) -> dict:
    """The settings that differ from a plain group's, for the audit event."""
    plain = _policy(None)
    return {f: v for f, v in policy.items() if v != plain[f]}


def group_update(
    *, group: Group, name, description, roles, policy: dict | None = None, by: Actor
) -> Group:
    """Rename, describe, give and take away roles, change the privileged-
    access settings (`policy`: those given change, the rest stay). The
    group must lie within the actor's permissions before and after, so
    every role given or taken away does too. Switching eligibility on or
    off changes what every member holds now, so it needs rank over them
    all, as a change of roles does; loosening an approval is refused to a
    person by the four-eyes rule (accounts.delegation)."""
    name = clean_label(name, "Name")
    roles = list(roles)
    with access_write(by=by, target=group) as writer:
        reload(group)
        policy = _policy(policy, group)
        configured = configured_group_names().get(group.name)
        if name != group.name and configured:
            raise AccountError(
                _("Group %(name)s %(why)s and cannot be renamed.")
                % {"name": group.name, "why": _(configured)},
                code="configured",
            )
        if Group.objects.filter(name__iexact=name).exclude(pk=group.pk).exists():
            raise AccountError(
                _("A group named %(name)s already exists.") % {"name": name}, code="name_taken"
            )
        writer.require("backoffice:groups:edit", "edit groups")
        current = list(group.roles.all())
        writer.within_roles(current, _("change group %(name)s") % {"name": group.name})
        changed = sorted(set(roles) ^ set(current), key=lambda r: r.name)
        still_there(Role, changed)
        for role in changed:
            writer.within_roles([role], _("give or take away role %(name)s") % {"name": role.name})
        policy_before = {f: getattr(group, f) for f in POLICY}
        eligibility = policy["eligible_only"] != group.eligible_only
        if changed or eligibility:
            writer.outranks_members(
                [group.pk], _("change the roles of group %(name)s") % {"name": group.name}
            )
        before = {
            "name": group.name,
            "description": as_seeded(group.description),
            "roles": sorted(r.name for r in current),
            **policy_before,
        }
        group.name, group.description = name, (description or "").strip()
        for field, value in policy.items():
            setattr(group, field, value)
        group.save()
        group.roles.set(roles)
        if changed or eligibility:
            access.changed(User.objects.filter(memberships__group=group))
        after = {
            "name": group.name,
            "description": as_seeded(group.description),
            "roles": sorted(r.name for r in roles),
            **policy,
        }
        changed_fields = changes(before, after)
        if changed_fields:
            audit(AuditAction.GROUP_UPDATED, by=by, target=group, details=changed_fields)
    return group


def group_delete(*, group: Group, by: Actor) -> None:
    configured = configured_group_names().get(group.name)
    if configured:
        raise AccountError(
            _("Group %(name)s %(why)s and cannot be deleted.")
            % {"name": group.name, "why": _(configured)},
            code="configured",
        )
    with access_write(by=by, target=group) as writer:
        reload(group)
        writer.require("backoffice:groups:delete", "delete groups")
        writer.within_groups([group], gettext_noop("delete group %(name)s"))
        members = group.memberships.count()
        if members:
            raise AccountError(
                _("Group %(name)s still has %(count)d member(s); remove them from it first.")
                % {"name": group.name, "count": members},
                code="conflict",
            )
        delete_audited(group, by=by)
