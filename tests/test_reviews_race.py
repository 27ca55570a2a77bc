"""Two workers sweeping access reviews at the same moment, on PostgreSQL:
each end, application, reminder and next instance is claimed by a
conditional write, so it happens once whoever gets there first."""

import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection, connections

from accounts.audit import Actor, AuditAction
from accounts.models import AuditEvent, Membership
from reviews.models import AccessReview
from reviews.services import review_start, reviews_sweep
from tests.factories import GroupFactory, RoleFactory, RuleFactory, UserFactory

ROUNDS = 8

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="races need a server database (CI runs it)"
    ),
]


def both(now):
    barrier = threading.Barrier(2)
    errors = []

    def run():
        try:
            barrier.wait()
            reviews_sweep(now=now)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []


def test_two_sweeps_at_once_do_everything_once(seed_groups):
    owner = UserFactory(email="owner@shop.example", groups=["root"])
    role = RoleFactory(name="viewer")
    RuleFactory(role=role, pattern="backoffice:users:view")
    for round_ in range(ROUNDS):
        group = GroupFactory(name=f"support-{round_}", roles=[role])
        UserFactory(email=f"ada{round_}@shop.example", groups=[group], last_login=None)
        UserFactory(email=f"bob{round_}@shop.example", groups=[group], last_login=None)
        review = review_start(
            name=f"R{round_}",
            group=group,
            reviewer_mode="self",
            recurrence="monthly",
            duration_days=10,
            default="revoke",
            auto_apply=True,
            by=Actor(user=owner, channel="web"),
        )
        mail.outbox.clear()
        both(review.starts_at + timedelta(days=6))  # half-way: reminders
        assert sorted(m.to[0] for m in mail.outbox) == [
            f"ada{round_}@shop.example",
            f"bob{round_}@shop.example",
        ], round_
        both(review.starts_at + timedelta(days=11))  # the end, applied
        assert (
            AuditEvent.objects.filter(action=AuditAction.REVIEW_ENDED, target_id=review.pk).count()
            == 1
        )
        assert (
            AuditEvent.objects.filter(
                action=AuditAction.REVIEW_APPLIED, target_id=review.pk
            ).count()
            == 1
        )
        assert not Membership.objects.filter(group=group).exists()
        assert sorted(review.items.values_list("outcome", flat=True)) == ["revoked", "revoked"]
        both(review.starts_at + timedelta(days=32))  # the next month
        assert AccessReview.objects.filter(previous=review).count() == 1, round_
