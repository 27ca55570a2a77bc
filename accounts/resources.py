"""Resource names, the registry of the ones that exist, and the patterns
rules use to match them.

A resource is `area:screen:action` (for example `backoffice:users:create`).
A pattern has the same three parts, each a name or `*` for "any".

The registry is the finite list of resources a view (or, later, an API
endpoint) can declare. Delegation decisions (`accounts.delegation`) are made
on sets of registered resources: a pattern "grants" exactly the registered
resources it matches, so `allow backoffice:*:view` is as much as the view
rights that exist, and a pattern that matches none grants nothing.
"""

import re
from difflib import get_close_matches
from functools import lru_cache

from django.core.exceptions import ValidationError

from accounts.errors import AccountError

_PART = re.compile(r"^(\*|[a-z0-9][a-z0-9_-]{0,62})$")

WILDCARD = "*"

# Every resource that guards something. A new screen or action adds its line
# here; `requires()` refuses to guard a view with a resource that is missing.
REGISTRY: tuple[str, ...] = (
    "backoffice:users:view",
    "backoffice:users:create",
    "backoffice:users:edit",
    "backoffice:users:block",
    "backoffice:users:delete",
    "backoffice:users:reset-password",
    "backoffice:users:reset-mfa",
    "backoffice:groups:view",
    "backoffice:groups:create",
    "backoffice:groups:edit",
    "backoffice:groups:delete",
    "backoffice:roles:view",
    "backoffice:roles:create",
    "backoffice:roles:edit",
    "backoffice:roles:delete",
    "backoffice:audit:view",
    "backoffice:audit:export",
    "backoffice:api-clients:view",
    "backoffice:api-clients:create",
    "backoffice:api-clients:edit",
    "backoffice:api-clients:delete",
    # Access reviews (reviews): read them and their reports; start, stop
    # and apply them. Reviewers decide without either: the review names them.
    "backoffice:reviews:view",
    "backoffice:reviews:create",
)

# What someone must hold so that access can always be repaired from the
# screens: every action on users, groups and roles (accounts.delegation).
MANAGE_ACCESS: frozenset[str] = frozenset(
    r
    for r in REGISTRY
    if r.startswith(("backoffice:users:", "backoffice:groups:", "backoffice:roles:"))
)


def split_resource(value: str) -> tuple[str, str, str]:
    """Parse a resource or pattern; raise ValueError when it is malformed."""
    parts = value.split(":") if isinstance(value, str) else []
    if len(parts) != 3 or not all(_PART.match(part) for part in parts):
        raise ValueError(f"{value!r} is not of the form area:screen:action")
    return parts[0], parts[1], parts[2]


def validate_pattern(value: str) -> None:
    """Form and model validator for a rule's pattern."""
    try:
        split_resource(value)
    except ValueError:
        raise ValidationError(
            "Use three parts area:screen:action, each lower-case letters, digits, "
            "'-' or '_', or * for any (for example backoffice:users:*).",
            code="invalid_pattern",
        ) from None


def validate_resource(value: str) -> tuple[str, str, str]:
    """A resource a view declares: like a pattern, but without wildcards."""
    parts = split_resource(value)
    if WILDCARD in parts:
        raise ValueError(f"resource {value!r} must not contain wildcards")
    return parts


def validate_registered(value: str) -> tuple[str, str, str]:
    """A resource a view guards itself with: well formed and in REGISTRY."""
    parts = validate_resource(value)
    if value not in REGISTRY:
        raise ValueError(f"resource {value!r} is not in accounts.resources.REGISTRY")
    return parts


def pattern_matches(pattern: tuple[str, str, str], resource: tuple[str, str, str]) -> bool:
    return all(p in (WILDCARD, r) for p, r in zip(pattern, resource, strict=True))


@lru_cache(maxsize=1024)
def matching(pattern: str) -> frozenset[str]:
    """The registered resources a pattern matches (empty when malformed).
    Bounded: patterns come from people typing, not only from the registry."""
    try:
        parts = split_resource(pattern)
    except ValueError:
        return frozenset()
    return frozenset(r for r in REGISTRY if pattern_matches(parts, split_resource(r)))


# --- rules as people type them ----------------------------------------------

MAX_RULE_LINES = 200


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
            bad = f"line {number}: '{parts[1][:60]}' is not area:screen:action"
            errors.append(bad + _hint(parts[1]))
            continue
        if not matching(parts[1]):
            bad = f"line {number}: '{parts[1][:60]}' matches no resource that exists"
            errors.append(bad + _hint(parts[1]))
            continue
        rule = (parts[0].lower(), parts[1])
        if rule not in rules:
            rules.append(rule)
    if errors:
        raise AccountError("; ".join(errors) + ".")
    return rules


def nearest(pattern: str) -> str:
    """The registered resource closest to a mistyped pattern ("" if none is
    close): a typo is answered with one suggestion, not the whole registry."""
    found = get_close_matches(pattern.lower()[:100], REGISTRY, n=1, cutoff=0.6)
    return found[0] if found else ""


def _hint(pattern: str) -> str:
    guess = nearest(pattern)
    return f" (did you mean {guess}?)" if guess else ""
