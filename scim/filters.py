"""SCIM filters (parsed by scim2-models) as database queries.

A deliberately small subset: `eq` on the attributes clients look accounts
and groups up by (Entra ID: userName, `emails[type eq "work"].value`,
externalId, displayName, and a group's members[value eq "…"]), joined by
`and`/`or`, also inside a value path (`emails[type eq "work" and value eq
"…"]`). An account has one address, its work address (emails mirrors
userName): a filter on another type finds nothing. Anything else is refused
with invalidFilter rather than answered wrongly.
"""

from __future__ import annotations

from django.db.models import Q
from scim2_models import Group as ScimGroup
from scim2_models import InvalidFilterException, ScimFilter
from scim2_models import User as ScimUser
from scim2_models.path.expressions import (
    CompareOperator,
    Comparison,
    LogicalExpr,
    LogicalOperator,
    ValuePath,
)

from accounts.inputs import normalize_email
from scim.resources import to_id

MAX_FILTER = 1000
NOTHING = Q(pk__in=[])


def _user_eq(attr: str, value: str, client) -> Q:
    if attr in ("username", "emails", "emails.value"):
        return Q(email=normalize_email(value))
    if attr == "emails.type":
        return Q() if value.lower() == "work" else NOTHING
    if attr == "externalid":
        return Q(scim_accounts__client=client, scim_accounts__external_id=value)
    if attr == "id":
        pk = to_id(value)
        return Q(pk=pk) if pk is not None else NOTHING
    raise InvalidFilterException(detail=f"Filtering Users by {attr} is not supported.")


def _group_eq(attr: str, value: str, client) -> Q:
    if attr == "displayname":
        return Q(display_name__iexact=value)
    if attr == "externalid":
        return Q(external_id=value)
    if attr == "id":
        pk = to_id(value)
        return Q(pk=pk) if pk is not None else NOTHING
    if attr in ("members", "members.value"):
        pk = to_id(value)
        return Q(members__user_id=pk) if pk is not None else NOTHING
    raise InvalidFilterException(detail=f"Filtering Groups by {attr} is not supported.")


def _attr(attr_path) -> str:
    name = attr_path.attr if not attr_path.sub_attr else f"{attr_path.attr}.{attr_path.sub_attr}"
    return name.lower()


def _q(node, eq, client) -> Q:
    if isinstance(node, LogicalExpr):
        parts = [_q(term, eq, client) for term in node.terms]
        combined = parts[0]
        for part in parts[1:]:
            combined = combined & part if node.op == LogicalOperator.and_ else combined | part
        return combined
    if isinstance(node, ValuePath) and node.sub_attr is None:
        # attr[filter]: the filter's attributes are the sub-attributes of attr
        # (the parser reads `emails[type eq "work"].value eq "x"` as
        # `emails[type eq "work" and value eq "x"]`).
        parent = _attr(node.attr_path)

        def sub_eq(attr, value, client):
            return eq(f"{parent}.{attr}", value, client)

        return _q(node.val_filter, sub_eq, client)
    if isinstance(node, Comparison):
        return _compare(_attr(node.attr_path), node, eq, client)
    raise InvalidFilterException(detail="Only eq comparisons joined by and/or are supported.")


def storable(text: str) -> bool:
    """Text with a UTF-8 form: not a lone surrogate (a JSON or filter
    escape such as \\ud800), which every database driver refuses with a
    UnicodeEncodeError rather than a DatabaseError."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _compare(attr: str, node: Comparison, eq, client) -> Q:
    if node.op != CompareOperator.eq or not isinstance(node.value, str):
        raise InvalidFilterException(detail="Only eq comparisons with a string are supported.")
    if not storable(node.value):
        raise InvalidFilterException(detail="The filter holds text that is not valid Unicode.")
    return eq(attr, node.value, client)


def _parse(text: str, model):
    if len(text) > MAX_FILTER:
        raise InvalidFilterException(detail="The filter is too long.")
    try:
        return ScimFilter[model](text).ast
    except InvalidFilterException:
        raise
    except (ValueError, TypeError) as exc:
        raise InvalidFilterException(detail="The filter could not be parsed.") from exc


def users_q(text: str, client) -> Q:
    return _q(_parse(text, ScimUser), _user_eq, client)


def groups_q(text: str, client) -> Q:
    return _q(_parse(text, ScimGroup), _group_eq, client)
