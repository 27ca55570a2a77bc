"""Resource names and the patterns rules use to match them.

A resource is `area:screen:action` (for example `backoffice:users:create`).
A pattern has the same three parts, each a name or `*` for "any".
"""

import re

from django.core.exceptions import ValidationError

_PART = re.compile(r"^(\*|[a-z0-9][a-z0-9_-]{0,62})$")

WILDCARD = "*"


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


def pattern_matches(pattern: tuple[str, str, str], resource: tuple[str, str, str]) -> bool:
    return all(p in (WILDCARD, r) for p, r in zip(pattern, resource, strict=True))
