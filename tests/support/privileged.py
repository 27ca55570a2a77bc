"""What the tests of privileged access at the non-screen doors (API, SCIM,
SSO, the command line) share: groups with the privileged-access settings,
a person's actor, an activation as the screens make it."""

from __future__ import annotations

import time

from django.test import RequestFactory

from accounts import access
from accounts.audit import Actor
from accounts.models import AccessRequest, Group, Membership, User
from accounts.services import privileged
from tests.factories import GroupFactory, RoleFactory, RuleFactory

AUDIT_VIEW = "backoffice:audit:view"


def group_giving(name: str, pattern: str = AUDIT_VIEW, **policy) -> Group:
    """A group whose one role allows `pattern`, with `policy` (eligible_only,
    grant_approval, ...)."""
    role = RoleFactory(name=f"{name}-role")
    RuleFactory(role=role, pattern=pattern)
    group = GroupFactory(name=name, roles=[role])
    if policy:
        Group.objects.filter(pk=group.pk).update(**policy)
        group.refresh_from_db()
    return group


def person(user: User) -> Actor:
    """`user` acting at the screens."""
    return Actor.of(RequestFactory().get("/"), user=user)


def holds(user: User, permission: str) -> bool:
    """What a request of `user` may do now (the compiled rules)."""
    return permission in access.permissions(User.objects.get(pk=user.pk))


def activate(user: User, group: Group, hours: int = 1) -> AccessRequest:
    """`user` activates `group` as the Request access screen does: a fresh
    second factor, a justification."""
    return privileged.access_activate(
        user=user,
        group=group,
        justification="incident 42",
        hours=hours,
        mfa_at=time.time(),
        by=person(user),
    )


def membership(user: User, group: Group) -> Membership | None:
    return Membership.objects.filter(user=user, group=group).first()


def pending(user: User, group: Group):
    return AccessRequest.objects.filter(
        user=user, group=group, kind=AccessRequest.Kind.GRANT, status=AccessRequest.Status.PENDING
    )
