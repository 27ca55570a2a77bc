"""Accounts and groups as SCIM resources (scim2-models), and back.

userName is the account's email, the login, and the only place a client
sets it: emails mirrors it (Entra ID maps userPrincipalName to userName and
mail to emails by default; two sources for one login would flip-flop).
"""

from __future__ import annotations

from scim2_models import Email, EnterpriseUser, GroupMember, Meta, Name
from scim2_models import Group as ScimGroup
from scim2_models import User as ScimUser

from accounts.errors import AccountError
from scim.models import Account, Group
from scim.services import GroupData, UserData

# Entra ID sends the enterprise extension (department, manager...) by
# default: accepted, not kept.
UserModel = ScimUser[EnterpriseUser]


def to_id(value) -> int | None:
    """Our ids are integers; anything else names nothing here."""
    text = str(value or "")
    return int(text) if text.isdigit() and len(text) < 19 else None


def user_resource(user, account: Account | None, base: str) -> ScimUser:
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
