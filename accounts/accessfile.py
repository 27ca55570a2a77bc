"""Access as code: the YAML file `manage.py access export` writes and
`access apply` reads (README "Access as code").

    version: 1
    roles:
      - name: helpdesk
        description: Answers the phone.
        rules:
          - allow backoffice:users:view
          - deny backoffice:users:delete
    groups:
      - name: support
        description: First-line support.
        roles: [helpdesk]
      - name: root
        roles: [everything]
        eligible_only: true          # privileged access on demand: members
        max_activation_hours: 4      # activate it (default 8 hours),
        activation_approval: true    # with another person's approval;
        grant_approval: true         # every new membership needs a second admin
    references: {...}   # read-only: what the configuration names

Parsing walks the composed YAML nodes (PyYAML's safe loader, nothing is
constructed from tags) so every refusal names the line it is about: a
reviewer reads the file, not a traceback. Aliases and merge keys are refused
(one entry, one place). Role references and what the database holds are the
service's to check (accounts.services.access_model), with these lines, as
are the rules of names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from accounts.inputs import has_control
from accounts.resources import matching, nearest, split_resource

VERSION = 1
MAX_BYTES = 1_000_000
# Lists and mappings in one another; the export's deepest is 5 (references).
MAX_DEPTH = 10
DESCRIPTION_MAX = 255
EFFECTS = ("allow", "deny")
STR = "tag:yaml.org,2002:str"
NULL = "tag:yaml.org,2002:null"
BOOL = "tag:yaml.org,2002:bool"
INT = "tag:yaml.org,2002:int"
# A group's privileged-access settings (accounts.models.Group) and their
# defaults: a file that leaves one out means the default; export writes
# only those that differ from it.
POLICY_DEFAULTS = {
    "eligible_only": False,
    "max_activation_hours": 8,
    "activation_approval": False,
    "grant_approval": False,
}
MAX_ACTIVATION_HOURS = 24 * 7

HEADER = """\
# The access model of this Back Office: roles (rules on resources), and
# groups (roles). `manage.py access apply FILE` makes the database match it;
# README "Access as code".
"""
REFERENCES_NOTE = """\
# Read-only here: the groups this instance's configuration names. The
# environment (IAM_MFA_REQUIRED_GROUPS, IAM_SSO_DEFAULT_GROUP,
# IAM_SSO_<ID>_ROLE_MAP) and `manage.py scimtoken` own them; `access apply`
# changes none of it and warns when a group named here does not exist.
"""


class FileError(ValueError):
    """The file is not an access model; `line` (1-based) says where, if known."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line

    def __str__(self) -> str:
        message = super().__str__()
        return f"line {self.line}: {message}" if self.line else message


@dataclass(frozen=True)
class RoleSpec:
    name: str
    description: str
    rules: frozenset[tuple[str, str]]
    line: int
    name_line: int


@dataclass(frozen=True)
class GroupSpec:
    name: str
    description: str
    # (role name, line of the reference)
    roles: tuple[tuple[str, int], ...]
    line: int
    name_line: int
    # The privileged-access settings, every one (defaults filled in), as
    # ((key, value), ...) in POLICY_DEFAULTS' order.
    policy: tuple[tuple[str, object], ...] = tuple(POLICY_DEFAULTS.items())

    @property
    def settings(self) -> dict:
        return dict(self.policy)


@dataclass(frozen=True)
class AccessFile:
    roles: tuple[RoleSpec, ...] = ()
    groups: tuple[GroupSpec, ...] = ()
    references: dict = field(default_factory=dict)


# --- reading ------------------------------------------------------------------------


def _line(node) -> int:
    return node.start_mark.line + 1


def _mapping(node, what: str, keys: tuple[str, ...], required=()) -> dict:
    """A mapping's values by key; unknown, duplicate or missing keys refused."""
    if not isinstance(node, yaml.MappingNode):
        raise FileError(f"{what} must be a mapping ({', '.join(keys)})", _line(node))
    found = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != STR:
            raise FileError(f"{what}: keys must be text", _line(key_node))
        key = key_node.value
        if key not in keys:
            raise FileError(
                f"{what}: unknown key {key[:40]!r} (expected {', '.join(keys)})", _line(key_node)
            )
        if key in found:
            raise FileError(f"{what}: {key!r} is given twice", _line(key_node))
        found[key] = value_node
    for key in required:
        if key not in found:
            raise FileError(f"{what}: {key!r} is missing", _line(node))
    return found


def _sequence(node, what: str) -> list:
    if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == NULL):
        return []
    if not isinstance(node, yaml.SequenceNode):
        raise FileError(f"{what} must be a list", _line(node))
    return node.value


def _text(node, what: str, *, optional: bool = False) -> str:
    if optional and (node is None or (isinstance(node, yaml.ScalarNode) and node.tag == NULL)):
        return ""
    if not isinstance(node, yaml.ScalarNode) or node.tag != STR:
        raise FileError(f"{what} must be text (quote it)", _line(node))
    return node.value


def _name(node, what: str) -> str:
    """Text; the rules of names (accounts.services.common.clean_label) are
    checked by the service, with this line."""
    return _text(node, what).strip()


def _description(node, what: str) -> str:
    if node is None:
        return ""
    value = _text(node, f"{what}: description", optional=True).strip()
    if has_control(value):
        raise FileError(
            f"{what}: description must be one line without control characters", _line(node)
        )
    if len(value) > DESCRIPTION_MAX:
        raise FileError(f"{what}: description is longer than {DESCRIPTION_MAX}", _line(node))
    return value


def _rule(node, what: str) -> tuple[str, str]:
    """`allow PATTERN` or `deny PATTERN`, PATTERN matching a registered resource."""
    text = _text(node, f"{what}: a rule")
    parts = text.split()
    if len(parts) != 2 or parts[0] not in EFFECTS:
        raise FileError(f"{what}: write a rule as 'allow PATTERN' or 'deny PATTERN'", _line(node))
    effect, pattern = parts
    try:
        split_resource(pattern)
    except ValueError:
        raise FileError(
            f"{what}: {pattern[:60]!r} is not area:screen:action{_hint(pattern)}", _line(node)
        ) from None
    if not matching(pattern):
        raise FileError(
            f"{what}: {pattern[:60]!r} is an unknown resource (it matches none that "
            f"exists){_hint(pattern)}",
            _line(node),
        )
    return effect, pattern


def _hint(pattern: str) -> str:
    guess = nearest(pattern)
    return f"; did you mean {guess}?" if guess else ""


def _unique(name: str, node, seen: dict, kind: str) -> None:
    key = name.casefold()
    if key in seen:
        raise FileError(f"{kind} {name!r} is given twice (first on line {seen[key]})", _line(node))
    seen[key] = _line(node)


def _role(node) -> RoleSpec:
    fields = _mapping(node, "a role", ("name", "description", "rules"), required=("name",))
    name = _name(fields["name"], "a role's name")
    what = f"role {name}"
    rules, lines = [], {}
    for item in _sequence(fields.get("rules"), f"{what}: rules"):
        rule = _rule(item, what)
        if rule in lines:
            raise FileError(
                f"{what}: rule '{' '.join(rule)}' is given twice (first on line {lines[rule]})",
                _line(item),
            )
        lines[rule] = _line(item)
        rules.append(rule)
    return RoleSpec(
        name=name,
        description=_description(fields.get("description"), what),
        rules=frozenset(rules),
        line=_line(node),
        name_line=_line(fields["name"]),
    )


def _setting(node, what: str, key: str):
    """A privileged-access setting: true/false, or whole hours (1 to a week)."""
    if key == "max_activation_hours":
        if not (isinstance(node, yaml.ScalarNode) and node.tag == INT and node.value.isdigit()):
            raise FileError(f"{what}: {key} must be a whole number of hours", _line(node))
        hours = int(node.value)
        if not 1 <= hours <= MAX_ACTIVATION_HOURS:
            raise FileError(
                f"{what}: {key} must be between 1 and {MAX_ACTIVATION_HOURS}", _line(node)
            )
        return hours
    if not (isinstance(node, yaml.ScalarNode) and node.tag == BOOL):
        raise FileError(f"{what}: {key} must be true or false", _line(node))
    return node.value.lower() in ("true", "yes", "on")


def _group(node) -> GroupSpec:
    fields = _mapping(
        node, "a group", ("name", "description", "roles", *POLICY_DEFAULTS), required=("name",)
    )
    name = _name(fields["name"], "a group's name")
    what = f"group {name}"
    roles, seen = [], {}
    for item in _sequence(fields.get("roles"), f"{what}: roles"):
        role = _name(item, f"{what}: a role name")
        _unique(role, item, seen, f"{what}: role")
        roles.append((role, _line(item)))
    policy = {
        key: _setting(fields[key], what, key) if key in fields else default
        for key, default in POLICY_DEFAULTS.items()
    }
    return GroupSpec(
        name=name,
        description=_description(fields.get("description"), what),
        roles=tuple(roles),
        line=_line(node),
        name_line=_line(fields["name"]),
        policy=tuple(policy.items()),
    )


def _plain(node):
    """The read-only references section as plain data (compared, never applied)."""
    if isinstance(node, yaml.MappingNode):
        return {_plain(k): _plain(v) for k, v in node.value}
    if isinstance(node, yaml.SequenceNode):
        return [_plain(v) for v in node.value]
    return node.value


def parse(text: str) -> AccessFile:
    """The file's access model; FileError (with its line) for anything else."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise FileError(f"the file is larger than {MAX_BYTES // 1000} kB")
    try:
        depth = 0
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise FileError(
                    "anchors and aliases (&, *) are not supported: write each entry out",
                    event.start_mark.line + 1,
                )
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise FileError("nested too deeply", event.start_mark.line + 1)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "not YAML"
        raise FileError(f"not valid YAML: {problem}", mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise FileError(f"not valid YAML: {str(exc).splitlines()[0]}") from None
    if root is None:
        raise FileError("the file is empty: expected roles: and groups:")
    top = _mapping(root, "the file", ("version", "roles", "groups", "references"))
    if "version" in top:
        version = top["version"]
        if not (isinstance(version, yaml.ScalarNode) and version.value == str(VERSION)):
            raise FileError(f"version must be {VERSION}", _line(version))
    roles, seen = [], {}
    for node in _sequence(top.get("roles"), "roles"):
        role = _role(node)
        _unique(role.name, node, seen, "role")
        roles.append(role)
    groups, seen = [], {}
    for node in _sequence(top.get("groups"), "groups"):
        group = _group(node)
        _unique(group.name, node, seen, "group")
        groups.append(group)
    references = top.get("references")
    if references is not None and not isinstance(references, yaml.MappingNode):
        raise FileError("references must be a mapping", _line(references))
    return AccessFile(
        roles=tuple(roles),
        groups=tuple(groups),
        references=_plain(references) if references is not None else {},
    )


# --- writing ------------------------------------------------------------------------


def _dump(data) -> str:
    return yaml.safe_dump(
        data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )


def render(snapshot: dict) -> str:
    """The file for a snapshot (accounts.services.access_model.access_model_snapshot),
    in a stable order, so two exports of the same state are equal byte for byte."""
    model = {"version": VERSION, "roles": snapshot["roles"], "groups": snapshot["groups"]}
    references = {"references": snapshot["references"]}
    return f"{HEADER}{_dump(model)}\n{REFERENCES_NOTE}{_dump(references)}"
