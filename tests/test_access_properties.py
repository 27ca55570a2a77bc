"""Property: random edits of the access model by random actors, through the
services every door uses (screens, API, SCIM). After each accepted write:
(a) nobody's effective permissions grew or shrank outside what the writer
held, and (b) someone active can still manage users, groups and roles."""

import pytest
from django.db import transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from accounts import services
from accounts.audit import Actor
from accounts.delegation import managers_remain, user_permissions
from accounts.models import Group, Membership, Role, Rule, User

pytestmark = pytest.mark.django_db

PATTERNS = [
    "*:*:*",
    "backoffice:*:*",
    "backoffice:*:view",
    "backoffice:users:*",
    "backoffice:users:view",
    "backoffice:users:edit",
    "backoffice:users:block",
    "backoffice:groups:*",
    "backoffice:groups:edit",
    "backoffice:roles:*",
    "backoffice:roles:edit",
    "backoffice:audit:*",
]
ROLES, GROUPS, USERS = 4, 3, 5

rules = st.lists(
    st.tuples(st.sampled_from(["allow", "deny"]), st.sampled_from(PATTERNS)), max_size=3
)
subset = lambda n: st.sets(st.integers(0, n - 1), max_size=n)  # noqa: E731
operation = st.one_of(
    st.tuples(st.just("user_groups"), st.integers(0, USERS - 1), subset(GROUPS + 1)),
    st.tuples(st.just("user_status"), st.integers(0, USERS - 1), st.booleans()),
    st.tuples(st.just("group_roles"), st.integers(0, GROUPS), subset(ROLES + 1)),
    st.tuples(st.just("role_rules"), st.integers(0, ROLES), rules),
)
world = st.fixed_dictionaries(
    {
        "roles": st.lists(rules, min_size=ROLES, max_size=ROLES),
        "group_roles": st.lists(subset(ROLES), min_size=GROUPS, max_size=GROUPS),
        "memberships": st.lists(
            st.sets(st.integers(0, GROUPS - 1), min_size=1, max_size=2),
            min_size=USERS,
            max_size=USERS,
        ),
        # Actors are the narrow admins (users 1…); root (user 0) now and then.
        "steps": st.lists(
            st.tuples(st.integers(0, USERS - 1) | st.integers(1, USERS - 1), operation),
            min_size=1,
            max_size=10,
        ),
    }
)


class Rollback(Exception):
    pass


def _build(spec):
    administrator = Role.objects.get(name="administrator")
    roles = []
    for index, role_rules in enumerate(spec["roles"]):
        role = Role.objects.create(name=f"p-role-{index}")
        for effect, pattern in dict.fromkeys(role_rules):
            Rule.objects.create(role=role, effect=effect, pattern=pattern)
        roles.append(role)
    roles.append(administrator)
    groups = []
    for index, picked in enumerate(spec["group_roles"]):
        group = Group.objects.create(name=f"p-group-{index}")
        group.roles.set([roles[i] for i in picked])
        groups.append(group)
    groups.append(Group.objects.get(name="root"))
    users = []
    for index, picked in enumerate(spec["memberships"]):
        user = User.objects.create(email=f"p{index}@shop.example", first_name="P", last_name="Q")
        # The first user is only in root: the store starts with a manager.
        picked = {GROUPS} if index == 0 else picked
        Membership.objects.bulk_create([Membership(user=user, group=groups[i]) for i in picked])
        users.append(user)
    return roles, groups, users


def _effective(users) -> dict[int, frozenset]:
    """What each user may do right now: nothing while blocked."""
    fresh = {u.pk: u for u in User.objects.filter(pk__in=[u.pk for u in users])}
    return {pk: user_permissions(pk) if fresh[pk].is_active else frozenset() for pk in fresh}


def _apply(op, actor, roles, groups, users):
    kind, target, value = op
    if kind == "user_groups":
        user = User.objects.get(pk=users[target].pk)
        services.user_update(
            user=user,
            email=user.email,
            first_name=user.first_name,
            last_name=user.last_name,
            groups=[groups[i] for i in sorted(value)],
            active=user.is_active,
            by=Actor(user=actor),
        )
    elif kind == "user_status":
        services.user_set_status(user=users[target], active=value, by=Actor(user=actor))
    elif kind == "group_roles":
        group = Group.objects.get(pk=groups[target].pk)
        services.group_update(
            group=group,
            name=group.name,
            description="",
            roles=[roles[i] for i in sorted(value)],
            by=Actor(user=actor),
        )
    else:
        role = Role.objects.get(pk=roles[target].pk)
        services.role_update(
            role=role,
            name=role.name,
            description="",
            rules=list(dict.fromkeys(value)),
            by=Actor(user=actor),
        )


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=world)
def test_no_write_gives_or_takes_beyond_the_writer_and_root_survives(db, spec):
    try:
        with transaction.atomic():
            roles, groups, users = _build(spec)
            assert managers_remain()
            for actor_index, op in spec["steps"]:
                actor = User.objects.get(pk=users[actor_index].pk)
                before = _effective(users)
                writer_held = before[actor.pk]
                try:
                    _apply(op, actor, roles, groups, users)
                except services.AccountError:
                    assert _effective(users) == before, f"a refused {op} changed something"
                    event(f"refused {op[0]}")
                    continue
                event(f"accepted {op[0]}")
                after = _effective(users)
                for pk in before:
                    gained, lost = after[pk] - before[pk], before[pk] - after[pk]
                    assert gained <= writer_held, f"{op} by {actor} gave {gained - writer_held}"
                    assert lost <= writer_held, f"{op} by {actor} took {lost - writer_held}"
                assert managers_remain(), f"{op} by {actor} locked access out"
            raise Rollback
    except Rollback:
        pass
