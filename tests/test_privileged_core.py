"""The privileged-access rules at the services (issue 23): ends take effect
without a write, eligibility gives nothing until activated, and one admin
alone cannot reach a four-eyes group's power through any other write."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import access, services
from accounts.audit import Actor
from accounts.delegation import managers_remain
from accounts.models import AccessRequest, AuditEvent, Group, Membership, Role, Rule, User
from accounts.resources import REGISTRY
from accounts.services import privileged
from tests.factories import GroupFactory, RuleFactory, UserFactory

pytestmark = pytest.mark.django_db

USERS_VIEW = "backoffice:users:view"


def fresh(user):
    return User.objects.get(pk=user.pk)


@pytest.fixture
def root():
    return Group.objects.get(name="root")


@pytest.fixture
def two_roots(root):
    return UserFactory(groups=[root]), UserFactory(groups=[root])


@pytest.fixture
def guarded_root(root):
    """The operator switched four eyes on for root."""
    services.group_update(
        group=root,
        name=root.name,
        description=root.description,
        roles=list(root.roles.all()),
        policy={"grant_approval": True},
        by=Actor.system(),
    )
    return root


def give(user, group, by, ends=None):
    return services.user_update(
        user=user,
        email=None,
        first_name=None,
        last_name=None,
        groups=[*fresh(user).groups.all(), group],
        active=None,
        by=by,
        ends={group.pk: ends} if ends is not None else None,
    )


# --- time-bound memberships --------------------------------------------------------


def test_a_membership_gives_nothing_from_its_end_on_without_any_write(root):
    person = UserFactory(groups=[root])
    Membership.objects.filter(user=person).update(ends_at=timezone.now() + timedelta(seconds=1))
    access.changed(User.objects.filter(pk=person.pk))
    assert access.can(fresh(person), USERS_VIEW)
    time.sleep(1.05)
    # Same access stamp, nothing swept: the compiled rules knew their end.
    assert access.can(fresh(person), USERS_VIEW) is False
    assert Membership.objects.filter(user=person).exists()


def test_an_end_in_the_past_is_refused_and_nothing_changes(root, two_roots):
    admin, _other = two_roots
    person = UserFactory()
    with pytest.raises(services.AccountError):
        give(person, root, Actor(user=admin), ends=timezone.now() - timedelta(minutes=1))
    assert not Membership.objects.filter(user=person).exists()


def test_the_end_is_recorded_once_however_often_the_sweep_runs(root, two_roots):
    person = UserFactory(groups=[root])
    Membership.objects.filter(user=person).update(ends_at=timezone.now() - timedelta(seconds=1))
    assert privileged.expire_due() == 1
    assert privileged.expire_due() == 0
    assert (
        AuditEvent.objects.filter(action="membership.expired", target_id=str(person.pk)).count()
        == 1
    )
    assert not Membership.objects.filter(user=person).exists()


def test_an_ended_root_member_does_not_count_for_the_root_invariant(root):
    only = UserFactory(groups=[root])
    assert managers_remain()
    Membership.objects.filter(user=only).update(ends_at=timezone.now() - timedelta(seconds=1))
    assert not managers_remain()


# --- eligibility ---------------------------------------------------------------------


def test_an_eligible_member_holds_nothing_until_activation_but_counts_for_rank(root, two_roots):
    admin, _other = two_roots
    narrow = UserFactory(
        groups=[GroupFactory(roles=[RuleFactory(pattern="backoffice:users:*").role])]
    )
    eligible = GroupFactory(
        roles=list(root.roles.all()), eligible_only=True, activation_approval=False
    )
    person = UserFactory(groups=[eligible])
    assert not access.can(fresh(person), USERS_VIEW)
    # A narrow admin cannot change someone who could activate root.
    with pytest.raises(services.AccessRefused):
        services.user_update(
            user=person,
            email=None,
            first_name="X",
            last_name=None,
            groups=None,
            active=None,
            by=Actor(user=narrow),
        )
    request = privileged.access_activate(
        user=person,
        group=eligible,
        justification="INC-1 outage",
        hours=1,
        mfa_at=time.time(),
        by=Actor(user=person),
    )
    assert request.status == AccessRequest.Status.ACTIVE
    assert access.can(fresh(person), USERS_VIEW)


def test_activation_needs_a_fresh_second_factor_and_a_justification(root):
    eligible = GroupFactory(roles=list(root.roles.all()), eligible_only=True)
    person = UserFactory(groups=[eligible])
    by = Actor(user=person)
    for kwargs in (
        {"justification": "x", "mfa_at": None},
        {"justification": "x", "mfa_at": time.time() - privileged.FRESH_SECOND_FACTOR - 1},
        {"justification": "   ", "mfa_at": time.time()},
    ):
        with pytest.raises(services.AccountError):
            privileged.access_activate(user=person, group=eligible, hours=1, by=by, **kwargs)
    with pytest.raises(services.AccountError):
        privileged.access_activate(
            user=person, group=eligible, justification="x", hours=9, mfa_at=time.time(), by=by
        )
    assert not AccessRequest.objects.exists()


def test_an_api_token_or_scim_client_cannot_activate_or_approve(root, two_roots):
    admin, _other = two_roots
    eligible = GroupFactory(
        roles=list(root.roles.all()), eligible_only=True, activation_approval=True
    )
    person = UserFactory(groups=[eligible])
    capped = Actor(user=person).capped({USERS_VIEW})
    with pytest.raises(services.AccessRefused):
        privileged.access_activate(
            user=person, group=eligible, justification="x", hours=1, mfa_at=time.time(), by=capped
        )
    request = privileged.access_activate(
        user=person,
        group=eligible,
        justification="x",
        hours=1,
        mfa_at=time.time(),
        by=Actor(user=person),
    )
    for by in (
        Actor(user=admin).capped(frozenset(REGISTRY)),
        Actor.bounded(label="scim", ceiling=["root"]),
    ):
        with pytest.raises(services.AccessRefused):
            privileged.access_request_approve(request=request, by=by)
    request.refresh_from_db()
    assert request.status == AccessRequest.Status.PENDING


# --- four eyes -------------------------------------------------------------------------


def test_a_grant_waits_for_a_second_admin_who_is_neither_asker_nor_subject(guarded_root, two_roots):
    first, second = two_roots
    person = UserFactory()
    updated = give(person, guarded_root, Actor(user=first))
    (request,) = updated.pending_grants
    assert not Membership.objects.filter(user=person).exists()
    for by in (Actor(user=first), Actor(user=person)):
        with pytest.raises(services.AccessRefused):
            privileged.access_request_approve(request=request, by=by)
    privileged.access_request_approve(request=request, by=Actor(user=second))
    assert access.can(fresh(person), USERS_VIEW)
    with pytest.raises(services.AccountError):
        privileged.access_request_approve(request=request, by=Actor(user=second))


def test_lengthening_a_four_eyes_membership_waits_too_shortening_does_not(guarded_root, two_roots):
    first, _second = two_roots
    soon = timezone.now() + timedelta(days=1)
    person = UserFactory(groups=[guarded_root])
    Membership.objects.filter(user=person).update(ends_at=soon)
    later = give(person, guarded_root, Actor(user=first), ends=soon + timedelta(days=30))
    assert len(later.pending_grants) == 1
    assert Membership.objects.get(user=person).ends_at == soon
    AccessRequest.objects.all().delete()
    give(person, guarded_root, Actor(user=first), ends=soon - timedelta(hours=12))
    assert Membership.objects.get(user=person).ends_at == soon - timedelta(hours=12)


@pytest.mark.parametrize(
    "bypass",
    [
        "new group with root's role",
        "new role with root's rule",
        "rule added to an open role",
        "approval switched off",
    ],
)
def test_one_admin_cannot_reach_root_around_four_eyes(guarded_root, two_roots, bypass):
    """The four-eyes rule: what only guarded groups give stays behind them,
    whichever write tries to hand it out."""
    first, _second = two_roots
    by = Actor(user=first)
    open_group = GroupFactory(roles=[RuleFactory(pattern="backoffice:audit:view").role])
    # A role alone gives nobody anything: creating it is allowed.
    almighty = services.role_create(name="almighty", rules=[("allow", "*:*:*")], by=by)
    before = (Group.objects.count(), Role.objects.count(), Rule.objects.count())
    with pytest.raises(services.AccessRefused) as refused:
        if bypass == "new group with root's role":
            services.group_create(name="root2", roles=list(guarded_root.roles.all()), by=by)
        elif bypass == "new role with root's rule":
            services.group_update(
                group=open_group,
                name=open_group.name,
                description="",
                roles=[*open_group.roles.all(), almighty],
                by=by,
            )
        elif bypass == "rule added to an open role":
            role = open_group.roles.get()
            services.role_update(
                role=role,
                name=role.name,
                description="",
                rules=[("allow", "backoffice:audit:view"), ("allow", "backoffice:users:*")],
                by=by,
            )
        else:
            services.group_update(
                group=guarded_root,
                name="root",
                description=guarded_root.description,
                roles=list(guarded_root.roles.all()),
                policy={"grant_approval": False},
                by=by,
            )
    assert refused.value.reason == "four_eyes"
    assert (Group.objects.count(), Role.objects.count(), Rule.objects.count()) == before
    assert Group.objects.get(pk=guarded_root.pk).grant_approval


def test_a_new_guarded_group_may_give_protected_rights_and_the_operator_may_loosen(
    guarded_root, two_roots
):
    first, _second = two_roots
    services.group_create(
        name="root-deputies",
        roles=list(guarded_root.roles.all()),
        policy={"grant_approval": True},
        by=Actor(user=first),
    )
    services.group_update(
        group=guarded_root,
        name="root",
        description=guarded_root.description,
        roles=list(guarded_root.roles.all()),
        policy={"grant_approval": False},
        by=Actor.system(),
    )
    assert not Group.objects.get(pk=guarded_root.pk).grant_approval
