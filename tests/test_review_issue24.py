"""Access reviews attacked as an outsider would (issue 24, part 1 review):
a hostile self-reviewer, a reviewer without rights, a careless owner, a
spreadsheet reading the report. Each test goes through the doors people
use (the test client, the worker's sweep)."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.audit import Actor
from accounts.delegation import user_permissions
from accounts.models import Membership, User
from reviews import services
from reviews.models import AccessReview
from tests.factories import GroupFactory, RoleFactory, RuleFactory, UserFactory
from tests.support.people import browser_of

pytestmark = pytest.mark.django_db

Review = AccessReview


def group_with(name, *rules):
    """A group whose one role has these (effect, pattern) rules."""
    role = RoleFactory(name=f"{name}-role")
    for effect, pattern in rules:
        RuleFactory(role=role, effect=effect, pattern=pattern)
    return GroupFactory(name=name, roles=[role])


def start(by_user, **fields):
    values = {
        "name": "Tidy up",
        "reviewer_mode": Review.Reviewers.SELF,
        "recurrence": Review.Recurrence.ONCE,
        "duration_days": 14,
        "default": Review.Default.KEEP,
    }
    values.update(fields)
    return services.review_start(by=Actor(user=by_user, channel="web"), **values)


def decide(client, item, decision="approve", justification="Still on the team"):
    return client.post(
        f"/reviews/items/{item.pk}/decide/",
        {"decision": decision, "justification": justification},
    )


def end_now(review):
    Review.objects.filter(pk=review.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    review.refresh_from_db()


@pytest.fixture
def restricted(db):
    """Eve: staff (every users right) held back by a deny group."""
    staff = group_with("staff", ("allow", "backoffice:users:*"))
    no_delete = group_with("no-delete", ("deny", "backoffice:users:delete"))
    eve = UserFactory(email="eve@shop.example", groups=[staff, no_delete])
    assert "backoffice:users:delete" not in user_permissions(eve.pk)
    return eve, no_delete


class TestRevokeNeverGives:
    """A reviewer decides without any right: "revoke" must only ever take
    away. Taking away a membership in a group whose rules deny would give
    its member what the deny held back."""

    def test_a_self_reviewer_cannot_lift_their_own_deny(self, root_user, restricted):
        eve, no_delete = restricted
        review = start(root_user, group=no_delete, auto_apply=True)
        item = review.items.get(user=eve)
        assert decide(browser_of(eve), item, "revoke", "I do not need it").status_code == 302
        end_now(review)
        services.reviews_sweep()
        item.refresh_from_db()
        assert item.outcome == "not_applied"
        assert "give" in item.outcome_reason
        assert Membership.objects.filter(user=eve, group=no_delete).exists()
        assert "backoffice:users:delete" not in user_permissions(eve.pk)

    def test_a_revoke_default_lifts_no_deny_when_applied_by_hand(self, root_user, restricted):
        eve, no_delete = restricted
        review = start(root_user, group=no_delete, default=Review.Default.REVOKE)
        end_now(review)
        services.reviews_sweep()
        assert browser_of(root_user).post(f"/reviews/{review.pk}/apply/").status_code == 302
        assert Membership.objects.filter(user=eve, group=no_delete).exists()
        assert review.items.get().outcome == "not_applied"

    def test_a_plain_group_is_still_revoked(self, root_user):
        support = group_with("support", ("allow", "backoffice:users:view"))
        ada = UserFactory(email="ada@shop.example", groups=[support])
        review = start(root_user, group=support, default=Review.Default.REVOKE)
        end_now(review)
        services.reviews_sweep()
        browser_of(root_user).post(f"/reviews/{review.pk}/apply/")
        assert review.items.get().outcome == "revoked"
        assert not Membership.objects.filter(user=ada).exists()
