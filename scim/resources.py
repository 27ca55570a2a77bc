"""Accounts and groups as SCIM resources (scim2-models), and back.

userName is the account's email, the login, and the only place a client
sets it: emails mirrors it (Entra ID maps userPrincipalName to userName and
mail to emails by default; two sources for one login would flip-flop).
"""

from __future__ import annotations

import logging

from pydantic import ValidationError
from scim2_models import Email as ScimEmail
from scim2_models import EnterpriseUser, GroupMember, Meta, Name
from scim2_models import Group as ScimGroup
from scim2_models import User as ScimUser

from accounts.errors import AccountError
from scim.models import Account, Group
from scim.services import GroupChange, GroupData, UserData

logger = logging.getLogger("iam.scim")


class Email(ScimEmail):
    """An address as accounts.inputs knows it. scim2-models' own Email is
    pydantic's EmailStr, which refuses special-use domains (`.local`,
    `.test`, `.invalid`, `.localhost`, `.onion`, `.arpa`) that every other
    door accepts: rendering such an account failed, and with it every PATCH
    (a deactivation too) and the unfiltered user list. One rule for every
    door: the address a client sends is the userName, checked by the account
    services (accounts.inputs.clean_email); emails only mirrors it."""

    value: str | None = None


class UserModel(ScimUser[EnterpriseUser]):
    """A User as this service reads and writes it. Entra ID sends the
    enterprise extension (department, manager...) by default: accepted, not
    kept."""

    emails: list[Email] | None = None


def to_id(value) -> int | None:
    """Our ids are integers; anything else names nothing here."""
    text = str(value or "")
    return int(text) if text.isascii() and text.isdigit() and len(text) < 19 else None


def user_resource(user, account: Account | None, base: str) -> UserModel:
    return UserModel(
        id=str(user.pk),
        external_id=(account.external_id or None) if account else None,
        user_name=user.email,
        name=Name(given_name=user.first_name, family_name=user.last_name),
        display_name=user.full_name,
        emails=[Email(value=user.email, type="work", primary=True)],
        active=user.is_active,
        meta=Meta(
            resource_type="User",
            created=user.created_at,
            last_modified=user.updated_at,
            location=f"{base}Users/{user.pk}",
        ),
    )


def user_json(user, account: Account | None, base: str, dump) -> dict:
    """The JSON of an account, whatever is stored: `dump` renders the
    resource (with the request's attributes parameters). Rendering never
    decides whether a write happens (it runs after the commit of a PATCH);
    should the model ever refuse a stored value, the client still gets the
    attributes it matches on rather than an error for a change made."""
    try:
        return dump(user_resource(user, account, base))
    except (ValidationError, ValueError):
        logger.exception("scim: user %s could not be rendered", user.pk)
        return {
            "schemas": [str(UserModel.__schema__)],
            "id": str(user.pk),
            "externalId": (account.external_id or None) if account else None,
            "userName": user.email,
            "active": user.is_active,
            "meta": {"resourceType": "User", "location": f"{base}Users/{user.pk}"},
        }


def user_data(resource: ScimUser) -> UserData:
    """What to keep of a User a client sent (after a PATCH: the patched copy)."""
    name = resource.name or Name()
    return UserData(
        email=resource.user_name or "",
        first_name=name.given_name or "",
        last_name=name.family_name or "",
        active=True if resource.active is None else bool(resource.active),
        external_id=(resource.external_id or "").strip(),
    )


def group_resource(group: Group, base: str, *, members: bool = True) -> ScimGroup:
    listed = None
    if members:
        listed = [
            GroupMember(value=str(a.user_id), ref=f"{base}Users/{a.user_id}", type="User")
            for a in group.members.order_by("user_id")
        ]
    return ScimGroup(
        id=str(group.pk),
        external_id=group.external_id or None,
        display_name=group.display_name,
        members=listed,
        meta=Meta(
            resource_type="Group",
            created=group.created_at,
            last_modified=group.updated_at,
            location=f"{base}Groups/{group.pk}",
        ),
    )


def group_data(resource: ScimGroup) -> GroupData:
    ids = set()
    for member in resource.members or []:
        if member.type == "Group" or "/Groups/" in str(member.ref or ""):
            raise AccountError("Nested groups are not supported.", field="members")
        pk = to_id(member.value)
        if pk is None:
            raise AccountError(f"No user with id {str(member.value)[:40]}.", field="members")
        ids.add(pk)
    return GroupData(
        display_name=resource.display_name or "",
        external_id=(resource.external_id or "").strip(),
        member_ids=ids,
    )


# What Entra ID adds to the schemas of a Group it creates (its tutorial's
# "Create Group" request): names no attribute, so it is dropped, not refused.
IGNORED_SCHEMAS = {"http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"}
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group:"


def without_ignored_schemas(body: dict) -> dict:
    schemas = body.get("schemas")
    if isinstance(schemas, list):
        body = {**body, "schemas": [s for s in schemas if s not in IGNORED_SCHEMAS]}
    return body


def _path_error(detail: str):
    from scim2_models import InvalidPathException

    return InvalidPathException(detail=detail)


def _member_ids(value, *, strict: bool) -> set[int]:
    """User ids of a members value ([{"value": "36", "$ref": null}, ...]).
    `strict` (add, replace): an id that names nobody here is refused; for a
    remove it names no member, so there is nothing to remove."""
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise AccountError('members must be a list of {"value": user id}.', field="members")
    ids = set()
    for member in value:
        if not isinstance(member, dict):
            raise AccountError('members must be a list of {"value": user id}.', field="members")
        ref = str(member.get("$ref") or "")
        if member.get("type") == "Group" or "/Groups/" in ref:
            raise AccountError("Nested groups are not supported.", field="members")
        pk = to_id(member.get("value"))
        if pk is None:
            if strict:
                raise AccountError(
                    f"No user with id {str(member.get('value'))[:40]}.", field="members"
                )
            continue
        ids.add(pk)
    return ids


def _filter_ids(val_filter) -> set[int]:
    """members[value eq "a" or value eq "b"] (aadOptscim062020's remove)."""
    from scim2_models.path.expressions import (
        CompareOperator,
        Comparison,
        LogicalExpr,
        LogicalOperator,
    )

    if isinstance(val_filter, LogicalExpr) and val_filter.op == LogicalOperator.or_:
        return set().union(*(_filter_ids(term) for term in val_filter.terms))
    if (
        isinstance(val_filter, Comparison)
        and val_filter.op == CompareOperator.eq
        and val_filter.attr_path.attr.lower() == "value"
        and val_filter.attr_path.sub_attr is None
    ):
        pk = to_id(val_filter.value)
        return {pk} if pk is not None else set()
    raise _path_error('Only members[value eq "…"] (joined by or) selects members here.')


def _attribute(name: str) -> str:
    name = name[len(GROUP_URN) :] if name.lower().startswith(GROUP_URN.lower()) else name
    return name.lower()


def _apply_group(change: GroupChange, op: str, attribute: str, value) -> None:
    if attribute == "displayname":
        if op == "remove":
            raise AccountError("displayName is required.", field="displayName")
        change.display_name = value if isinstance(value, str) else ""
    elif attribute == "externalid":
        if op != "remove" and value is not None and not isinstance(value, str):
            raise AccountError("externalId must be a string.", field="externalId")
        change.external_id = "" if op == "remove" else (value or "")
    elif attribute == "members":
        if op == "add":
            change.adding(_member_ids(value, strict=True))
        elif op == "replace":
            change.replacing(_member_ids(value or [], strict=True))
        elif value is None:
            change.replacing(set())  # remove of all members
        else:
            change.removing(_member_ids(value, strict=False))  # Entra's remove with a value
    elif attribute != "id":  # Okta's pathless replace repeats the (read-only) id
        raise _path_error(f"{attribute} cannot be changed on a Group here.")


def group_change(patch) -> GroupChange:
    """A validated PatchOp[Group] as the change it asks, without reading the
    group: its members are touched one by one (Entra sends one PATCH per
    membership change; a group may hold tens of thousands). Every shape of
    Entra ID's tutorial and known-issues page, with and without the
    aadOptscim062020 flag, and RFC 7644's: add/remove/replace of members
    with a value, remove of `members[value eq "…"]`, remove of all
    members, replace of displayName or externalId, a pathless replace or
    add whose value holds attributes."""
    change = GroupChange()
    for operation in patch.operations or []:
        op = operation.op.value
        # An empty path ("") parses to no expression: it is a pathless operation.
        if operation.path is None or operation.path.ast is None:
            if not isinstance(operation.value, dict):
                raise _path_error("An operation without a path needs an object as its value.")
            for name, value in operation.value.items():
                _apply_group(change, op, _attribute(name), value)
            continue
        ast = operation.path.ast
        attr_path = getattr(ast, "attr_path", ast)
        if getattr(ast, "val_filter", None) is not None:
            if attr_path.attr.lower() != "members" or op != "remove" or ast.sub_attr:
                raise _path_error("Only a remove may select members by a filter.")
            change.removing(_filter_ids(ast.val_filter))
            continue
        if attr_path.sub_attr is not None:
            raise _path_error(f"{operation.path} cannot be changed on a Group here.")
        _apply_group(change, op, _attribute(attr_path.attr), operation.value)
    return change
