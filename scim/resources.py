"""Accounts and groups as SCIM resources (scim2-models), and back.

userName is the account's email, the login. Entra ID sends the address in
both userName and emails[type eq "work"].value; when a request changes only
the latter, the address follows it (and userName with it).
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
        name=Name(given_name=user.first_name, family_name=user.last_name, formatted=user.full_name),
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


def _work_email(resource: ScimUser) -> str | None:
    emails = resource.emails or []
    for pick in (lambda e: e.primary, lambda e: (e.type or "") == "work", lambda e: True):
        for email in emails:
            if pick(email) and email.value:
                return str(email.value)
    return None


def user_data(resource: ScimUser, before: ScimUser | None = None) -> UserData:
    """What to keep of a User a client sent (after a PATCH: the patched copy
    of `before`)."""
    email = resource.user_name or _work_email(resource) or ""
    if before is not None and resource.user_name == before.user_name:
        changed = _work_email(resource)
        if changed and changed != _work_email(before):
            email = changed
    name = resource.name or Name()
    return UserData(
        email=email,
        first_name=name.given_name or "",
        last_name=name.family_name or "",
        active=True if resource.active is None else bool(resource.active),
        external_id=(resource.external_id or "").strip(),
    )


def group_resource(group: Group, base: str, *, members: bool = True) -> ScimGroup:
    listed = None
    if members:
        listed = [
            GroupMember(value=str(a.user_id), display=a.user.email, type="User")
            for a in group.members.select_related("user").order_by("user_id")
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
        pk = to_id(member.value)
        if pk is None:
            raise AccountError(f"No user with id {str(member.value)[:40]}.", field="members")
        ids.add(pk)
    return GroupData(
        display_name=resource.display_name or "",
        external_id=(resource.external_id or "").strip(),
        member_ids=ids,
    )
