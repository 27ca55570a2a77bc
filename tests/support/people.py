"""Admins holding exactly the rules a test names, and a browser logged in as them."""

from django.test import Client

from accounts.models import User
from tests.conftest import login
from tests.factories import PASSWORD, GroupFactory, RoleFactory, RuleFactory, UserFactory


def admin_with(*allow, deny=(), email=None, name=None) -> User:
    """A user in a group of their own whose one role has these rules."""
    role = RoleFactory(name=f"role-{name}") if name else RoleFactory()
    for pattern in allow:
        RuleFactory(role=role, effect="allow", pattern=pattern)
    for pattern in deny:
        RuleFactory(role=role, effect="deny", pattern=pattern)
    group = GroupFactory(name=name, roles=[role]) if name else GroupFactory(roles=[role])
    return UserFactory(email=email or f"{group.name}@shop.example", groups=[group])


def browser_of(user: User) -> Client:
    client = Client()
    assert login(client, user.email, PASSWORD).status_code == 302
    return client


def user_form(user: User, **overrides) -> dict:
    data = {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "status": user.status,
        "groups": [g.pk for g in user.groups.all()],
        "language": user.language,
    }
    data.update(overrides)
    return data
