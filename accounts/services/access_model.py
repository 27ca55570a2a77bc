"""Access as code: the access model as data (`access export`) and a file made
true (`access apply`) through the group and role services.

Apply is one access write (accounts.delegation.access_write): the group and
role services join it, so the file is applied whole or not at all, and the
root invariant is checked once, on the result. Each group or role written
keeps its own audit event (its history on the audit screen); the change as
a whole is one `access.applied` event with its summary. Nothing changes when
the database already matches (no write, no event).

What the file does not name is left alone unless `prune` is given: then the
groups and roles it does not name are deleted, through the same services
(which refuse a group that still has members, a role still given to a group
and a group the configuration names). Users and memberships are never
touched. A group's privileged-access settings (eligible_only,
max_activation_hours, activation_approval, grant_approval) are the file's
too: one it leaves out means the default. The command line is the
operator, so it may loosen them (the four-eyes rule binds people). A file
may not weaken the built-in group root: if it held
`allow *:*:*` and no deny rule before, it does after.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from accounts import extensions
from accounts.accessfile import POLICY_DEFAULTS, AccessFile, FileError, GroupSpec, RoleSpec
from accounts.audit import Actor, AuditAction, audit
from accounts.delegation import access_write
from accounts.errors import AccountError
from accounts.models import Group, Role, Rule
from accounts.seeds import as_seeded
from accounts.services.common import ROOT_GROUP, clean_label
from accounts.services.groups import (
    configured_group_names,
    group_create,
    group_delete,
    group_update,
)
from accounts.services.roles import role_create, role_delete, role_update

EVERYTHING = ("allow", "*:*:*")


@dataclass(frozen=True)
class Change:
    """One line of the diff: `+` created, `~` changed, `-` removed."""

    sign: str
    kind: str
    name: str
    what: str = ""

    def __str__(self) -> str:
        return f"{self.sign} {self.kind} {self.name}" + (f": {self.what}" if self.what else "")


@dataclass
class AccessChanges:
    """What an apply did (or, dry run, would do)."""

    changes: list[Change] = field(default_factory=list)
    # Groups and roles the file does not name, left as they are (no prune).
    kept: list[str] = field(default_factory=list)
    # Groups the configuration names that do not exist afterwards.
    warnings: list[str] = field(default_factory=list)
    applied: bool = False

    def count(self, sign: str) -> int:
        return sum(1 for c in self.changes if c.sign == sign)


# --- reading -----------------------------------------------------------------------


def _rule_text(rules) -> list[str]:
    return [f"{effect} {pattern}" for effect, pattern in sorted(rules)]


def access_model_snapshot() -> dict:
    """Groups, roles and rules as stored (a seeded description in its stored
    English, not as the reader's language shows it), and the read-only
    references of the configuration; sorted, so equal states export alike."""
    roles = sorted(Role.objects.prefetch_related("rules"), key=lambda r: r.name)
    groups = sorted(Group.objects.prefetch_related("roles"), key=lambda g: g.name)
    return {
        "roles": [
            {
                "name": role.name,
                "description": as_seeded(role.description),
                "rules": _rule_text((r.effect, r.pattern) for r in role.rules.all()),
            }
            for role in roles
        ],
        "groups": [
            {
                "name": group.name,
                "description": as_seeded(group.description),
                "roles": sorted(r.name for r in group.roles.all()),
                **_policy_of(group, changed_only=True),
            }
            for group in groups
        ],
        "references": {
            "mfa_required_groups": sorted(settings.IAM_MFA_REQUIRED_GROUPS),
            "sso_default_group": settings.IAM_SSO_DEFAULT_GROUP,
            **extensions.access_references(),
        },
    }


def _policy_of(group: Group, *, changed_only: bool = False) -> dict:
    """A group's privileged-access settings (all, or those not at their default)."""
    settings_ = {key: getattr(group, key) for key in POLICY_DEFAULTS}
    if changed_only:
        return {k: v for k, v in settings_.items() if v != POLICY_DEFAULTS[k]}
    return settings_


# --- applying ----------------------------------------------------------------------


class _DryRun(Exception):
    def __init__(self, result: AccessChanges):
        self.result = result


def access_model_apply(
    *, spec: AccessFile, prune: bool = False, dry_run: bool = False, by: Actor, source: str = ""
) -> AccessChanges:
    """Make the database match `spec`. A dry run does all of it (every check
    of the services and the root invariant included) and rolls it back,
    audit events with it. FileError (with the file's line) for a name the
    file gets wrong; AccountError for a refusal of a service."""
    if not dry_run:
        return _apply(spec, prune=prune, by=by, source=source)
    try:
        with transaction.atomic():
            raise _DryRun(_apply(spec, prune=prune, by=by, source=source))
    except _DryRun as done:
        done.result.applied = False
        return done.result


def _find(stored: dict, name: str):
    """The stored group or role a file's name means: the same name, or the
    same name in another case (the services keep names unique that way)."""
    if name in stored:
        return stored[name]
    folded = [obj for key, obj in stored.items() if key.casefold() == name.casefold()]
    return folded[0] if len(folded) == 1 else None


def _check_names(spec: AccessFile) -> None:
    for item in (*spec.roles, *spec.groups):
        try:
            clean_label(item.name, "Name")
        except AccountError as exc:
            raise FileError(f"{exc}", item.name_line) from None


def _root_strong() -> bool:
    rules = set(Rule.objects.filter(role__groups__name=ROOT_GROUP).values_list("effect", "pattern"))
    return EVERYTHING in rules and not any(effect == Rule.Effect.DENY for effect, _p in rules)


def _short(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def _role_change(role_spec: RoleSpec, role: Role | None) -> Change | None:
    if role is None:
        rules = ", ".join(_rule_text(role_spec.rules)) or "no rules"
        return Change("+", "role", role_spec.name, rules)
    diffs = []
    if role.name != role_spec.name:
        diffs.append(f"name {role.name} -> {role_spec.name}")
    stored = as_seeded(role.description)
    if stored != role_spec.description:
        diffs.append(f"description {_short(stored)} -> {_short(role_spec.description)}")
    current = {(r.effect, r.pattern) for r in role.rules.all()}
    added, removed = role_spec.rules - current, current - role_spec.rules
    if added or removed:
        rules = [f"+{r}" for r in _rule_text(added)] + [f"-{r}" for r in _rule_text(removed)]
        diffs.append("rules " + ", ".join(rules))
    return Change("~", "role", role_spec.name, "; ".join(diffs)) if diffs else None


def _group_change(group_spec: GroupSpec, group: Group | None, roles: list[str]) -> Change | None:
    wanted_policy = group_spec.settings
    if group is None:
        what = "roles " + (", ".join(roles) or "none")
        changed = [f"{k} {v}" for k, v in wanted_policy.items() if v != POLICY_DEFAULTS[k]]
        return Change("+", "group", group_spec.name, "; ".join([what, *changed]))
    diffs = []
    if group.name != group_spec.name:
        diffs.append(f"name {group.name} -> {group_spec.name}")
    stored = as_seeded(group.description)
    if stored != group_spec.description:
        diffs.append(f"description {_short(stored)} -> {_short(group_spec.description)}")
    # By role, not spelling: a role this file renames (its case) is the same role.
    current = {r.name.casefold(): r.name for r in group.roles.all()}
    wanted = {name.casefold(): name for name in roles}
    added = sorted(wanted[key] for key in wanted.keys() - current.keys())
    removed = sorted(current[key] for key in current.keys() - wanted.keys())
    if added or removed:
        diffs.append("roles " + ", ".join([f"+{n}" for n in added] + [f"-{n}" for n in removed]))
    stored_policy = _policy_of(group)
    for key, value in wanted_policy.items():
        if stored_policy[key] != value:
            diffs.append(f"{key} {stored_policy[key]} -> {value}")
    return Change("~", "group", group_spec.name, "; ".join(diffs)) if diffs else None


def _apply(spec: AccessFile, *, prune: bool, by: Actor, source: str) -> AccessChanges:
    _check_names(spec)
    result = AccessChanges()
    with access_write(by=by, target_label=source or "access model"):
        roles = {r.name: r for r in Role.objects.prefetch_related("rules")}
        groups = {g.name: g for g in Group.objects.prefetch_related("roles")}
        role_of = {s.name: _find(roles, s.name) for s in spec.roles}
        group_of = {s.name: _find(groups, s.name) for s in spec.groups}
        named_roles = {r.pk for r in role_of.values() if r is not None}
        named_groups = {g.pk for g in group_of.values() if g is not None}
        unnamed_roles = sorted((r for r in roles.values() if r.pk not in named_roles), key=str)
        unnamed_groups = sorted((g for g in groups.values() if g.pk not in named_groups), key=str)

        # The roles a group names: in the file, or (without prune) stored.
        in_file = {s.name.casefold(): s.name for s in spec.roles}
        kept_roles = {} if prune else {r.name: r for r in unnamed_roles}
        roles_of = {}
        for group_spec in spec.groups:
            names = []
            for name, line in group_spec.roles:
                if name.casefold() in in_file:
                    names.append(in_file[name.casefold()])
                elif (role := _find(kept_roles, name)) is not None:
                    names.append(role.name)
                else:
                    why = (
                        " (it is not in the file, and --prune deletes the roles the file "
                        "does not name)"
                        if _find(roles, name) is not None
                        else ""
                    )
                    raise FileError(f"group {group_spec.name}: unknown role {name!r}{why}", line)
            roles_of[group_spec.name] = names

        for role_spec in spec.roles:
            change = _role_change(role_spec, role_of[role_spec.name])
            if change:
                result.changes.append(change)
        for group_spec in spec.groups:
            group = group_of[group_spec.name]
            change = _group_change(group_spec, group, roles_of[group_spec.name])
            if change:
                result.changes.append(change)
        for kind, unnamed in (("group", unnamed_groups), ("role", unnamed_roles)):
            for obj in unnamed:
                if prune:
                    result.changes.append(Change("-", kind, obj.name))
                else:
                    result.kept.append(f"{kind} {obj.name}")

        if result.changes:
            _write(spec, result, role_of, group_of, roles_of, unnamed_groups, unnamed_roles, by)
            audit(
                AuditAction.ACCESS_APPLIED,
                by=by,
                target_type="access",
                target_label=source or "access model",
                details={"file": source, **_summary(result.changes)},
            )
            result.applied = True
        existing = set(Group.objects.values_list("name", flat=True))
        result.warnings = [
            _("group %(name)s %(why)s, but does not exist") % {"name": name, "why": _(why)}
            for name, why in sorted(configured_group_names().items())
            if name not in existing
        ]
    return result


def _summary(changes: list[Change]) -> dict:
    """{"groups": {"added": [...], "changed": [...], "deleted": [...]}, "roles": ...}:
    the names of what was written, for the one `access.applied` event."""
    summary = {}
    for kind in ("group", "role"):
        names = {
            word: [c.name for c in changes if c.kind == kind and c.sign == sign]
            for sign, word in (("+", "added"), ("~", "changed"), ("-", "deleted"))
        }
        names = {word: found for word, found in names.items() if found}
        if names:
            summary[f"{kind}s"] = names
    return summary


def _write(spec, result, role_of, group_of, roles_of, unnamed_groups, unnamed_roles, by):
    """The changes, through the services; refused whole if root is weakened."""
    root_was_strong = _root_strong()
    changed = {(c.kind, c.name) for c in result.changes}
    for role_spec in spec.roles:
        role = role_of[role_spec.name]
        fields = {
            "name": role_spec.name,
            "description": role_spec.description,
            "rules": sorted(role_spec.rules),
            "by": by,
        }
        if role is None:
            role_of[role_spec.name] = role_create(**fields)
        elif ("role", role_spec.name) in changed:
            role_update(role=role, **fields)
    stored = {r.name: r for r in Role.objects.all()}
    for group_spec in spec.groups:
        group = group_of[group_spec.name]
        fields = {
            "name": group_spec.name,
            "description": group_spec.description,
            "roles": [_find(stored, name) for name in roles_of[group_spec.name]],
            "policy": group_spec.settings,
            "by": by,
        }
        if group is None:
            group_create(**fields)
        elif ("group", group_spec.name) in changed:
            group_update(group=group, **fields)
    if any(c.sign == "-" for c in result.changes):
        for group in unnamed_groups:
            group_delete(group=group, by=by)
        for role in unnamed_roles:
            role_delete(role=role, by=by)
    if root_was_strong and not _root_strong():
        raise AccountError(
            _(
                "This file would weaken the built-in group %(name)s (it must keep allow "
                "*:*:* and no deny rule). Nothing was changed."
            )
            % {"name": ROOT_GROUP},
            code="configured",
        )
