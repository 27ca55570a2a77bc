"""Roles: create, rename, rewrite their rules, delete.

Writes run in `accounts.delegation.access_write` (the delegation rules);
the rules' grammar and parser live with the resources (accounts.resources)."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from accounts import access
from accounts.audit import Actor, AuditAction, audit
from accounts.delegation import access_write
from accounts.errors import AccountError
from accounts.models import Role, Rule, User
from accounts.seeds import as_seeded
from accounts.services.common import changes, clean_label, delete_audited, reload


def _rules_of(role: Role) -> list[tuple[str, str]]:
    return list(role.rules.values_list("effect", "pattern"))


def role_create(*, name, description="", rules=(), by: Actor) -> Role:
    name = clean_label(name, "Name")
    rules = list(rules)
    with access_write(by=by, target_label=name) as writer:
        writer.require("backoffice:roles:create", "create roles")
        if Role.objects.filter(name__iexact=name).exists():
            raise AccountError(
                _("A role named %(name)s already exists.") % {"name": name}, code="name_taken"
            )
        writer.within_rules(rules, _("write the rules of role %(name)s") % {"name": name})
        try:
            with transaction.atomic():
                role = Role.objects.create(name=name, description=(description or "").strip())
        except IntegrityError:
            raise AccountError(
                _("A role named %(name)s already exists.") % {"name": name}, code="name_taken"
            ) from None
        Rule.objects.bulk_create([Rule(role=role, effect=e, pattern=p) for e, p in rules])
        audit(
            AuditAction.ROLE_CREATED,
            by=by,
            target=role,
            details={"name": name, "rules": [f"{e} {p}" for e, p in rules]},
        )
    return role


def role_update(*, role: Role, name, description, rules, by: Actor) -> Role:
    """Rename, describe and rewrite the rules. The role must lie within the
    actor's permissions before and after, so every rule added or removed does."""
    name = clean_label(name, "Name")
    rules = list(rules)
    with access_write(by=by, target=role) as writer:
        reload(role)
        if Role.objects.filter(name__iexact=name).exclude(pk=role.pk).exists():
            raise AccountError(
                _("A role named %(name)s already exists.") % {"name": name}, code="name_taken"
            )
        writer.require("backoffice:roles:edit", "edit roles")
        current = _rules_of(role)
        writer.within_rules(current, _("change role %(name)s") % {"name": role.name})
        writer.within_rules(rules, _("write these rules in role %(name)s") % {"name": role.name})
        if set(rules) != set(current):
            holders = list(role.groups.values_list("pk", flat=True))
            writer.outranks_members(
                holders, _("change the rules of role %(name)s") % {"name": role.name}
            )
        before = {
            "name": role.name,
            "description": as_seeded(role.description),
            "rules": [f"{e} {p}" for e, p in current],
        }
        role.name, role.description = name, (description or "").strip()
        role.save()
        role.rules.all().delete()
        Rule.objects.bulk_create([Rule(role=role, effect=e, pattern=p) for e, p in rules])
        access.changed(User.objects.filter(memberships__group__roles=role))
        after = {
            "name": name,
            "description": as_seeded(role.description),
            "rules": [f"{e} {p}" for e, p in _rules_of(role)],
        }
        changed_fields = changes(before, after)
        if changed_fields:
            audit(AuditAction.ROLE_UPDATED, by=by, target=role, details=changed_fields)
    return role


def role_delete(*, role: Role, by: Actor) -> None:
    with access_write(by=by, target=role) as writer:
        reload(role)
        writer.require("backoffice:roles:delete", "delete roles")
        writer.within_rules(_rules_of(role), _("delete role %(name)s") % {"name": role.name})
        groups = sorted(role.groups.values_list("name", flat=True))
        if groups:
            raise AccountError(
                _("Role %(name)s is given to group(s) %(groups)s; take it away from them first.")
                % {"name": role.name, "groups": ", ".join(groups)},
                code="conflict",
            )
        delete_audited(role, by=by)
