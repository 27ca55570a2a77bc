"""Access reviews (issue 24, part 1), through the doors people use: the test
client for the screens and the reports, the worker's sweep for ends,
reminders and recurrence. Each rule of README "Access reviews" has a test
that fails without it."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.audit import Actor, AuditAction
from accounts.errors import AccessRefused, AccountError
from accounts.models import AuditEvent, Group, Membership, User
from reviews import services
from reviews.models import AccessReview, ReviewItem
from reviews.report import COLUMNS
from tests.factories import GroupFactory, RoleFactory, RuleFactory, UserFactory
from tests.support.people import admin_with, browser_of
from tests.support.reviews import start

pytestmark = pytest.mark.django_db

Review = AccessReview


def support_group(name="support"):
    role = RoleFactory(name=f"{name}-role")
    RuleFactory(role=role, pattern="backoffice:users:view")
    return GroupFactory(name=name, roles=[role])


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Run a call with its on-commit work (mails) done; the mails, by recipient."""

    def run(call):
        mail.outbox.clear()
        with django_capture_on_commit_callbacks(execute=True):
            result = call()
        return result, {m.to[0]: m for m in mail.outbox}

    return run


@pytest.fixture
def helpdesk(db):
    """A narrow admin: reviews and users, not root."""
    return admin_with(
        "backoffice:reviews:*",
        "backoffice:users:*",
        "backoffice:groups:view",
        email="helpdesk@shop.example",
        name="helpdesk",
    )


def form(**fields):
    data = {
        "name": "Quarterly root",
        "group": "",
        "resource": "",
        "reviewer_mode": "self",
        "reviewers": "",
        "recurrence": "quarterly",
        "duration_days": "14",
        "default": "recommendation",
    }
    data.update(fields)
    return data


def decide(client, item, decision="approve", justification="Still on the team"):
    return client.post(
        f"/reviews/items/{item.pk}/decide/",
        {"decision": decision, "justification": justification},
    )


def end_now(review):
    Review.objects.filter(pk=review.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    review.refresh_from_db()


# --- starting --------------------------------------------------------------------------


class TestStart:
    def test_root_starts_a_quarterly_self_review_of_root_and_every_member_is_mailed(
        self, admin, root_user, committed
    ):
        other = UserFactory(email="second@shop.example", groups=["root"])
        root = Group.objects.get(name="root")
        response, mails = committed(
            lambda: admin.post("/reviews/new/", form(group=root.pk, auto_apply="on"))
        )
        review = Review.objects.get()
        assert response.status_code == 302 and response["Location"] == f"/reviews/{review.pk}/"
        assert review.recurrence == "quarterly" and review.self_review and review.auto_apply
        assert review.owner == root_user and review.scope_label == "group root"
        assert sorted(review.items.values_list("user_email", flat=True)) == sorted(
            [other.email, root_user.email]
        )
        assert set(mails) == {other.email, root_user.email}
        assert "Quarterly root" in mails[other.email].subject
        event = AuditEvent.objects.get(action=AuditAction.REVIEW_STARTED)
        assert event.details["items"] == 2 and event.actor_label == root_user.email

    def test_a_narrow_admin_cannot_start_a_review_of_root(self, helpdesk, root_user):
        client = browser_of(helpdesk)
        root = Group.objects.get(name="root")
        response = client.post("/reviews/new/", form(group=root.pk))
        assert response.status_code == 200
        assert Review.objects.count() == 0
        # root is not even offered; the service refuses it anyway.
        assert f'value="{root.pk}"' not in response.content.decode()
        with pytest.raises(AccessRefused):
            start(helpdesk, group=root)
        assert Review.objects.count() == 0

    def test_a_narrow_admin_reviews_a_group_within_their_bound(self, helpdesk):
        support = support_group()
        UserFactory(email="ada@shop.example", groups=[support])
        client = browser_of(helpdesk)
        response = client.post("/reviews/new/", form(group=support.pk))
        assert response.status_code == 302
        assert Review.objects.get().items.get().user_email == "ada@shop.example"

    def test_every_group_reaching_a_resource_leaves_out_those_beyond_the_starter(
        self, helpdesk, root_user
    ):
        support = support_group()
        UserFactory(email="ada@shop.example", groups=[support])
        review = start(helpdesk, resource="backoffice:users:view")
        assert review.skipped_groups == ["root"]
        groups = set(review.items.values_list("group_name", flat=True))
        assert groups == {"support", "helpdesk"}

    def test_the_reviews_right_alone_is_not_enough(self):
        reviewer_only = admin_with("backoffice:reviews:*", name="reviewonly")
        support = support_group()
        with pytest.raises(AccessRefused):
            start(reviewer_only, group=support)
        response = browser_of(reviewer_only).post("/reviews/new/", form(group=support.pk))
        assert response.status_code == 200 and Review.objects.count() == 0

    def test_without_the_right_the_screens_are_closed(self, user):
        client = browser_of(user)
        assert client.get("/reviews/").status_code == 403
        assert client.get("/reviews/new/").status_code == 403

    def test_snapshot_holds_eligible_and_time_bound_memberships_not_ended_ones(self, root_user):
        support = support_group()
        eligible = support_group("oncall")
        Group.objects.filter(pk=eligible.pk).update(eligible_only=True)
        later = timezone.now() + timedelta(days=3)
        Membership.objects.create(user=UserFactory(email="a@shop.example"), group=support)
        Membership.objects.create(
            user=UserFactory(email="b@shop.example"), group=support, ends_at=later
        )
        Membership.objects.create(
            user=UserFactory(email="c@shop.example"),
            group=support,
            ends_at=timezone.now() - timedelta(minutes=1),
        )
        Membership.objects.create(user=UserFactory(email="d@shop.example"), group=eligible)
        review = start(root_user, resource="backoffice:users:view")
        kinds = dict(review.items.values_list("user_email", "membership_kind"))
        assert kinds["a@shop.example"] == "standing"
        assert kinds["b@shop.example"] == "time-bound"
        assert kinds["d@shop.example"] == "eligible"
        assert "c@shop.example" not in kinds

    def test_bad_input_is_a_form_error(self, admin, root_user):
        root = Group.objects.get(name="root")
        cases = [
            form(),  # neither a group nor a resource
            form(group=root.pk, resource="backoffice:users:view"),
            form(group=root.pk, recurrence="monthly", duration_days="60"),
            form(group=root.pk, reviewer_mode="named", reviewers=""),
            form(group=root.pk, reviewer_mode="named", reviewers="nobody@shop.example"),
            form(group=root.pk, name="bad\x1bname"),
            form(group="999999999"),
        ]
        for data in cases:
            response = admin.post("/reviews/new/", data)
            assert response.status_code == 200, data
            assert 'class="field-error"' in response.content.decode() or "alert" in (
                response.content.decode()
            )
        assert Review.objects.count() == 0

    def test_a_state_change_needs_the_csrf_token(self, root_user, password):
        client = Client(enforce_csrf_checks=True)
        client.force_login(root_user)
        root = Group.objects.get(name="root")
        assert client.post("/reviews/new/", form(group=root.pk)).status_code == 403
        assert Review.objects.count() == 0


# --- deciding ----------------------------------------------------------------------------


class TestDecide:
    def test_a_named_reviewer_never_decides_their_own_membership(self, root_user):
        support = support_group()
        reviewer = UserFactory(email="rev@shop.example", groups=[support])
        UserFactory(email="ada@shop.example", groups=[support])
        review = start(root_user, group=support, reviewer_mode="named", reviewers=[reviewer])
        own = review.items.get(user=reviewer)
        other = review.items.get(user_email="ada@shop.example")
        client = browser_of(reviewer)
        assert decide(client, own).status_code == 403
        own.refresh_from_db()
        assert own.decision == ""
        assert decide(client, other, "revoke", "Left the team").status_code == 302
        other.refresh_from_db()
        assert other.decision == "revoke" and other.decided_by == reviewer
        assert other.justification == "Left the team"
        # The page offers only the other's item.
        html = client.get(f"/reviews/{review.pk}/decide/").content.decode()
        assert f"decide-{other.pk}" in html and f"decide-{own.pk}" not in html

    def test_self_review_decides_ones_own_item_only(self, root_user):
        support = support_group()
        ada = UserFactory(email="ada@shop.example", groups=[support])
        bob = UserFactory(email="bob@shop.example", groups=[support])
        review = start(root_user, group=support)
        client = browser_of(ada)
        assert decide(client, review.items.get(user=bob), "revoke").status_code == 403
        assert review.items.get(user=bob).decision == ""
        assert decide(client, review.items.get(user=ada)).status_code == 302
        assert review.items.get(user=ada).decision == "approve"
        event = AuditEvent.objects.get(action=AuditAction.REVIEW_DECIDED)
        assert event.details["decision"] == "approve" and event.target_label == ada.email

    def test_someone_not_named_decides_nothing(self, root_user):
        support = support_group()
        UserFactory(email="ada@shop.example", groups=[support])
        reviewer = UserFactory(email="rev@shop.example")
        review = start(root_user, group=support, reviewer_mode="named", reviewers=[reviewer])
        stranger = browser_of(UserFactory(email="eve@shop.example"))
        assert decide(stranger, review.items.get()).status_code == 403
        assert stranger.get(f"/reviews/{review.pk}/decide/").status_code == 404
        # Even root decides only as a reviewer: the review names who decides.
        root_client = browser_of(root_user)
        assert decide(root_client, review.items.get()).status_code == 403

    def test_a_justification_is_required_bounded_and_plain(self, root_user):
        support = support_group()
        ada = UserFactory(email="ada@shop.example", groups=[support])
        review = start(root_user, group=support)
        item = review.items.get()
        client = browser_of(ada)
        for text in ("", "   ", "x" * 501, "fine\x1b[2J", "rtl \u202e override"):
            decide(client, item, "approve", text)
            item.refresh_from_db()
            assert item.decision == "", repr(text)
        with pytest.raises(AccountError):
            services.item_decide(
                item=item, decision="approve", justification="a\x00b", by=Actor(user=ada)
            )
        assert decide(client, item, "maybe", "why not").status_code == 302
        item.refresh_from_db()
        assert item.decision == ""
        decide(client, item, "dont_know", "line one\nline two")
        item.refresh_from_db()
        assert item.decision == "dont_know"

    def test_after_the_end_no_decision_is_taken(self, root_user):
        support = support_group()
        ada = UserFactory(email="ada@shop.example", groups=[support])
        review = start(root_user, group=support)
        end_now(review)
        decide(browser_of(ada), review.items.get())
        assert review.items.get().decision == ""

    def test_the_recommendation_follows_the_last_login(self, root_user):
        support = support_group()
        now = timezone.now()
        UserFactory(email="never@shop.example", groups=[support], last_login=None)
        UserFactory(email="old@shop.example", groups=[support], last_login=now - timedelta(31))
        UserFactory(email="new@shop.example", groups=[support], last_login=now - timedelta(2))
        review = start(root_user, group=support, reviewer_mode="named", reviewers=[root_user])
        got = dict(review.items.values_list("user_email", "recommendation"))
        assert got == {
            "never@shop.example": "revoke",
            "old@shop.example": "revoke",
            "new@shop.example": "approve",
        }
        html = browser_of(root_user).get(f"/reviews/{review.pk}/decide/").content.decode()
        assert html.count("Revoke") >= 2

    def test_my_reviews_and_the_dashboard_show_a_reviewer_their_items(self, root_user):
        support = support_group()
        ada = UserFactory(email="ada@shop.example", groups=[support])
        client = browser_of(ada)
        assert 'data-testid="reviews-open"' not in client.get("/").content.decode()
        review = start(root_user, group=support)
        assert 'data-testid="reviews-open"' in client.get("/").content.decode()
        assert f"mine-{review.pk}" in client.get("/reviews/mine/").content.decode()


# --- ending and applying ---------------------------------------------------------------------


class TestApply:
    def test_decisions_and_the_default_are_applied_through_the_user_service(self, root_user):
        support = support_group()
        keep = UserFactory(email="keep@shop.example", groups=[support])
        gone = UserFactory(email="gone@shop.example", groups=[support])
        quiet = UserFactory(email="quiet@shop.example", groups=[support], last_login=None)
        review = start(
            root_user,
            group=support,
            reviewer_mode="named",
            reviewers=[root_user],
            default=Review.Default.RECOMMENDATION,
        )
        rc = browser_of(root_user)
        decide(rc, review.items.get(user=keep), "approve", "needed")
        decide(rc, review.items.get(user=gone), "revoke", "moved on")
        end_now(review)
        assert services.reviews_sweep() == 1  # ended; not applied by itself
        review.refresh_from_db()
        assert review.status == "ended" and Membership.objects.filter(group=support).count() == 3
        response = rc.post(f"/reviews/{review.pk}/apply/")
        assert response.status_code == 302
        left = set(Membership.objects.filter(group=support).values_list("user__email", flat=True))
        assert left == {"keep@shop.example"}
        outcomes = dict(review.items.values_list("user_email", "outcome"))
        assert outcomes == {
            "keep@shop.example": "kept",
            "gone@shop.example": "revoked",
            "quiet@shop.example": "revoked",
        }
        event = AuditEvent.objects.filter(action=AuditAction.USER_UPDATED, target_id=gone.pk).get()
        assert event.details["groups"] == [["support"], []]
        assert event.details["review"] == review.pk
        assert event.details["review_decision"] == "revoke"
        assert event.actor_label == f"{root_user.email} via access review {review.pk}"
        assert quiet.memberships.count() == 0
        applied = AuditEvent.objects.get(action=AuditAction.REVIEW_APPLIED)
        assert applied.details == {"review": review.pk, "kept": 1, "revoked": 2, "not_applied": 0}
        # Applied once: a second press changes nothing.
        rc.post(f"/reviews/{review.pk}/apply/")
        assert AuditEvent.objects.filter(action=AuditAction.REVIEW_APPLIED).count() == 1

    def test_a_narrow_admins_review_does_not_revoke_roots_membership(self, helpdesk, root_user):
        support = support_group()
        UserFactory(email="ada@shop.example", groups=[support])
        Membership.objects.create(user=root_user, group=support)
        review = start(helpdesk, group=support, default=Review.Default.REVOKE, auto_apply=True)
        end_now(review)
        services.reviews_sweep()
        item = review.items.get(user=root_user)
        assert item.outcome == "not_applied"
        assert "holds permissions you do not" in item.outcome_reason
        assert Membership.objects.filter(user=root_user, group=support).exists()
        assert review.items.get(user_email="ada@shop.example").outcome == "revoked"

    def test_a_narrow_admin_cannot_stop_or_apply_roots_review(self, helpdesk, root_user):
        root = Group.objects.get(name="root")
        review = start(root_user, group=root)
        client = browser_of(helpdesk)
        client.post(f"/reviews/{review.pk}/stop/")
        review.refresh_from_db()
        assert review.status == "active"
        end_now(review)
        services.reviews_sweep()
        client.post(f"/reviews/{review.pk}/apply/")
        review.refresh_from_db()
        assert review.status == "ended"

    def test_a_revocation_breaking_the_root_invariant_is_refused_and_reported(
        self, root_user, admin
    ):
        """The owner's own root membership ends in 30 days: taking away the
        other root member's lasting one would leave access repairable only
        until then. Refused (audited as such), reported, nothing else lost."""
        second = UserFactory(email="second@shop.example", groups=["root"])
        root = Group.objects.get(name="root")
        Membership.objects.filter(user=root_user, group=root).update(
            ends_at=timezone.now() + timedelta(days=30)
        )
        review = start(root_user, group=root, default=Review.Default.REVOKE, auto_apply=True)
        end_now(review)
        services.reviews_sweep()
        outcomes = {i.user_email: (i.outcome, i.outcome_reason) for i in review.items.all()}
        outcome, reason = outcomes[second.email]
        assert outcome == "not_applied" and "nobody could repair access" in reason
        # The owner's own membership: never taken away from themselves.
        outcome, reason = outcomes[root_user.email]
        assert outcome == "not_applied" and "away from yourself" in reason
        assert Membership.objects.filter(group=root).count() == 2
        assert AuditEvent.objects.filter(action=AuditAction.ACCESS_LOCKOUT_REFUSED).exists()
        text = admin.get(f"/reviews/{review.pk}/report.csv").content.decode()
        row = next(r for r in csv.DictReader(io.StringIO(text)) if r["user"] == second.email)
        assert row["outcome"] == "not_applied" and "nobody could repair" in row["outcome_reason"]

    def test_an_owner_who_lost_rights_applies_nothing_beyond_them(self, helpdesk, root_user):
        support = support_group()
        UserFactory(email="ada@shop.example", groups=[support])
        review = start(helpdesk, group=support, default=Review.Default.REVOKE, auto_apply=True)
        Membership.objects.filter(user=helpdesk).delete()  # lost their group since
        end_now(review)
        services.reviews_sweep()
        item = review.items.get()
        assert item.outcome == "not_applied" and "you do not" in item.outcome_reason
        assert Membership.objects.filter(group=support).count() == 1

    def test_a_deleted_owner_applies_nothing(self, helpdesk):
        support = support_group()
        UserFactory(email="ada@shop.example", groups=[support])
        review = start(helpdesk, group=support, default=Review.Default.REVOKE, auto_apply=True)
        User.objects.filter(pk=helpdesk.pk).delete()
        end_now(review)
        services.reviews_sweep()
        item = review.items.get()
        assert item.outcome == "not_applied" and "owner no longer exists" in item.outcome_reason
        assert Membership.objects.filter(group=support).count() == 1

    def test_a_membership_given_again_since_the_start_is_not_revoked(self, root_user):
        support = support_group()
        ada = UserFactory(email="ada@shop.example", groups=[support])
        review = start(root_user, group=support, default=Review.Default.REVOKE, auto_apply=True)
        Membership.objects.filter(user=ada).delete()
        Membership.objects.create(user=ada, group=support)  # a newer decision
        end_now(review)
        services.reviews_sweep()
        item = review.items.get()
        assert item.outcome == "not_applied" and "no longer exists" in item.outcome_reason
        assert Membership.objects.filter(user=ada, group=support).exists()

    def test_keep_default_and_dont_know_keep_access(self, root_user):
        support = support_group()
        ada = UserFactory(email="ada@shop.example", groups=[support], last_login=None)
        review = start(root_user, group=support, auto_apply=True)
        decide(browser_of(ada), review.items.get(), "dont_know", "not sure")
        end_now(review)
        services.reviews_sweep()
        assert review.items.get().outcome == "kept"
        assert Membership.objects.filter(user=ada).exists()

    def test_stopping_applies_nothing_and_ends_the_recurrence(self, admin, root_user):
        support = support_group()
        UserFactory(email="ada@shop.example", groups=[support])
        review = start(
            root_user,
            group=support,
            recurrence="monthly",
            default=Review.Default.REVOKE,
            auto_apply=True,
        )
        assert admin.post(f"/reviews/{review.pk}/stop/").status_code == 302
        review.refresh_from_db()
        assert review.status == "stopped"
        services.reviews_sweep(now=timezone.now() + timedelta(days=400))
        assert Review.objects.count() == 1
        assert Membership.objects.filter(group=support).count() == 1
        assert AuditEvent.objects.get(action=AuditAction.REVIEW_ENDED).details["stopped"] is True


# --- the worker -----------------------------------------------------------------


class TestWorker:
    def test_the_next_instance_starts_once_with_two_sweeps(self, root_user):
        support = support_group()
        UserFactory(email="ada@shop.example", groups=[support])
        review = start(root_user, group=support, recurrence="quarterly", duration_days=14)
        later = review.starts_at + timedelta(days=93)
        services.reviews_sweep(now=later)
        services.reviews_sweep(now=later)
        assert Review.objects.count() == 2
        following = Review.objects.exclude(pk=review.pk).get()
        assert following.previous == review and following.status == "active"
        assert following.items.count() == 1 and following.recurrence == "quarterly"
        assert AuditEvent.objects.filter(action=AuditAction.REVIEW_ENDED).count() == 1
        event = AuditEvent.objects.filter(action=AuditAction.REVIEW_STARTED).latest("id")
        assert event.channel == "worker" and event.details["previous"] == review.pk

    def test_no_next_instance_before_its_time(self, root_user):
        support = support_group()
        review = start(root_user, group=support, recurrence="yearly")
        services.reviews_sweep(now=review.starts_at + timedelta(days=200))
        assert Review.objects.count() == 1

    def test_an_owner_who_lost_the_right_starts_no_next_instance(self, helpdesk):
        support = support_group()
        review = start(helpdesk, group=support, recurrence="monthly", duration_days=7)
        Membership.objects.filter(user=helpdesk).delete()
        services.reviews_sweep(now=review.starts_at + timedelta(days=40))
        assert Review.objects.count() == 1

    def test_reminders_are_mailed_once_half_way(self, root_user, committed):
        support = support_group()
        ada = UserFactory(email="ada@shop.example", groups=[support])
        bob = UserFactory(email="bob@shop.example", groups=[support])
        review = start(root_user, group=support, duration_days=10)
        decide(browser_of(bob), review.items.get(user=bob))
        early = review.starts_at + timedelta(days=2)
        _, mails = committed(lambda: services.reviews_sweep(now=early))
        assert mails == {}
        half = review.starts_at + timedelta(days=6)
        _, mails = committed(lambda: services.reviews_sweep(now=half))
        assert set(mails) == {ada.email}  # bob decided already
        assert "Reminder" in mails[ada.email].subject
        _, mails = committed(lambda: services.reviews_sweep(now=half + timedelta(hours=1)))
        assert mails == {}


# --- the report -----------------------------------------------------------------


class TestReport:
    def test_csv_and_json_hold_the_review_and_each_item(self, admin, root_user):
        support = support_group()
        ada = UserFactory(email="ada@shop.example", groups=[support])
        review = start(root_user, group=support, default=Review.Default.REVOKE)
        decide(browser_of(ada), review.items.get(), "approve", '=HYPERLINK("x")')
        end_now(review)
        services.reviews_sweep()
        admin.post(f"/reviews/{review.pk}/apply/")
        response = admin.get(f"/reviews/{review.pk}/report.csv")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        text = response.content.decode()
        rows = list(csv.reader(io.StringIO(text)))
        assert tuple(rows[0]) == COLUMNS
        row = dict(zip(COLUMNS, rows[1], strict=True))
        assert row["user"] == ada.email and row["group"] == "support"
        assert row["decision"] == "approve" and row["decided_by"] == ada.email
        assert row["justification"] == '\'=HYPERLINK("x")'  # defused
        assert row["outcome"] == "kept" and row["unanswered_default"] == "revoke"
        assert row["started_by"] == root_user.email and row["scope"] == "group support"
        data = json.loads(admin.get(f"/reviews/{review.pk}/report.json").content)
        assert data["review"]["status"] == "applied"
        assert data["review"]["reviewers"] == "self-review"
        assert data["items"][0]["recommendation"] in ("approve", "revoke")
        assert data["items"][0]["outcome"] == "kept"

    def test_the_csv_header_stays_english_on_a_german_page(self, admin, root_user):
        review = start(root_user, group=support_group())
        response = admin.get(f"/reviews/{review.pk}/report.csv", HTTP_ACCEPT_LANGUAGE="de")
        assert response.content.decode().splitlines()[0] == ",".join(COLUMNS)

    def test_reports_need_the_view_right(self, root_user, user):
        review = start(root_user, group=support_group())
        client = browser_of(user)
        assert client.get(f"/reviews/{review.pk}/report.csv").status_code == 403
        assert client.get(f"/reviews/{review.pk}/report.json").status_code == 403


# --- the screens ----------------------------------------------------------------


class TestScreens:
    def test_list_and_page_in_both_languages(self, admin, root_user):
        review = start(root_user, group=Group.objects.get(name="root"))
        html = admin.get("/reviews/").content.decode()
        assert "Access reviews" in html and f"review-{review.pk}" in html
        german = admin.get("/reviews/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
        assert "Zugriffsüberprüfungen" in german
        page = admin.get(f"/reviews/{review.pk}/", HTTP_ACCEPT_LANGUAGE="de").content.decode()
        assert "Überprüfung anhalten" in page
        assert "0 von 1 entschieden" in page
        assert "Access reviews" in admin.get("/").content.decode()  # the navigation


# --- the command line ----------------------------------------------------------------


class TestCommand:
    def test_list_report_and_sweep(self, root_user, tmp_path):
        from django.core.management import call_command

        support = support_group()
        UserFactory(email="ada@shop.example", groups=[support])
        review = start(root_user, group=support, default=Review.Default.REVOKE, auto_apply=True)
        out = io.StringIO()
        call_command("reviews", "list", stdout=out)
        assert out.getvalue().startswith(f"{review.pk} active 0/1 ")
        end_now(review)
        out = io.StringIO()
        call_command("reviews", "sweep", stdout=out)
        assert "1 reminders, ends or new instances" in out.getvalue()
        out = io.StringIO()
        call_command("reviews", "report", str(review.pk), stdout=out)
        rows = list(csv.DictReader(io.StringIO(out.getvalue())))
        assert rows[0]["user"] == "ada@shop.example" and rows[0]["outcome"] == "revoked"
        target = tmp_path / "r.json"
        call_command(
            "reviews",
            "report",
            str(review.pk),
            "--format",
            "json",
            "--output",
            str(target),
            stderr=io.StringIO(),
        )
        assert json.loads(target.read_text())["items"][0]["outcome"] == "revoked"

    def test_a_bad_id_is_a_one_line_error(self):
        from django.core.management import CommandError, call_command

        for bad in ("abc", "99999", "1" * 40):
            with pytest.raises(CommandError):
                call_command("reviews", "report", bad, stdout=io.StringIO())
        review_id = str(start(UserFactory(groups=["root"]), group=support_group()).pk)
        with pytest.raises(CommandError):
            call_command(
                "reviews",
                "report",
                review_id,
                "--output",
                "/nonexistent/x.csv",
                stdout=io.StringIO(),
            )


class TestHostile:
    def test_a_narrow_admin_applying_roots_review_by_hand_reaches_no_further(
        self, helpdesk, root_user
    ):
        """Root's review of `support` ends unapplied; a narrower admin who may
        apply reviews of `support` presses Apply: root's own membership in
        `support` (root outranks them) stays, Ada's goes."""
        support = support_group()
        UserFactory(email="ada@shop.example", groups=[support])
        Membership.objects.create(user=root_user, group=support)
        review = start(
            root_user,
            group=support,
            reviewer_mode="named",
            reviewers=[helpdesk],
            default=Review.Default.REVOKE,
        )
        end_now(review)
        services.reviews_sweep()
        assert browser_of(helpdesk).post(f"/reviews/{review.pk}/apply/").status_code == 302
        item = review.items.get(user=root_user)
        assert item.outcome == "not_applied" and "holds permissions you do not" in (
            item.outcome_reason
        )
        assert Membership.objects.filter(user=root_user, group=support).exists()
        assert review.items.get(user_email="ada@shop.example").outcome == "revoked"

    def test_a_group_that_gained_rights_since_the_start_is_not_revoked_by_a_narrow_owner(
        self, helpdesk
    ):
        support = support_group()
        UserFactory(email="ada@shop.example", groups=[support])
        review = start(helpdesk, group=support, default=Review.Default.REVOKE, auto_apply=True)
        # Later, root gives `support` a role reaching the audit log.
        wider = RoleFactory(name="auditor")
        RuleFactory(role=wider, pattern="backoffice:audit:view")
        support.roles.add(wider)
        end_now(review)
        services.reviews_sweep()
        item = review.items.get()
        assert item.outcome == "not_applied" and "backoffice:audit:view" in item.outcome_reason
        assert Membership.objects.filter(group=support).count() == 1

    def test_too_many_reviewers_is_a_form_error_not_a_thousand_lookups(self, admin, root_user):
        root = Group.objects.get(name="root")
        many = "\n".join(f"r{n}@shop.example" for n in range(51))
        response = admin.post(
            "/reviews/new/", form(group=root.pk, reviewer_mode="named", reviewers=many)
        )
        assert response.status_code == 200 and "At most 50 reviewers." in response.content.decode()
        assert Review.objects.count() == 0

    def test_get_never_changes_anything(self, admin, root_user):
        review = start(root_user, group=support_group())
        for path in ("stop", "apply"):
            assert admin.get(f"/reviews/{review.pk}/{path}/").status_code == 405
        item = review.items.first()
        if item is not None:
            assert admin.get(f"/reviews/items/{item.pk}/decide/").status_code == 405
        review.refresh_from_db()
        assert review.status == "active"

    def test_unknown_ids_are_404_not_500(self, admin):
        for path in ("/reviews/999999/", "/reviews/999999/report.csv", "/reviews/999999/decide/"):
            assert admin.get(path).status_code == 404
        assert admin.post("/reviews/items/999999/decide/").status_code == 404
        assert admin.get("/reviews/99999999999999999999/").status_code == 404


class TestDashboardQuestion:
    def test_the_dashboards_sql_agrees_with_the_selector(self, root_user):
        """has_open_items (plain SQL, for the dashboard's cost) answers as
        items_to_decide does, in every case a reviewer can be in."""
        from reviews.selectors import has_open_items, items_to_decide

        support = support_group()
        ada = UserFactory(email="ada@shop.example", groups=[support])
        rev = UserFactory(email="rev@shop.example", groups=[support])
        other = UserFactory(email="other@shop.example")
        people = [root_user, ada, rev, other]

        def agree():
            for person in people:
                want = items_to_decide(person).filter(decision="").exists()
                assert has_open_items(person) == want, person.email
            return {p.email for p in people if has_open_items(p)}

        assert agree() == set()
        named = start(root_user, group=support, reviewer_mode="named", reviewers=[rev])
        assert agree() == {"rev@shop.example"}
        decide(browser_of(rev), named.items.get(user=ada))
        assert agree() == set()  # rev's own item is not theirs to decide
        selfish = start(root_user, group=support)
        assert agree() == {"ada@shop.example", "rev@shop.example"}
        decide(browser_of(ada), selfish.items.get(user=ada))
        assert agree() == {"rev@shop.example"}
        services.review_stop(review=selfish, by=Actor(user=root_user))
        assert agree() == set()
        User.objects.filter(pk=ada.pk).delete()  # an item without its user
        start(root_user, group=support, reviewer_mode="named", reviewers=[other])
        assert agree() == {"other@shop.example"}


class TestInterrupted:
    def test_an_applying_cut_short_is_finished_by_the_next_sweep_once(self, root_user):
        support = support_group()
        UserFactory(email="ada@shop.example", groups=[support])
        UserFactory(email="bob@shop.example", groups=[support])
        review = start(root_user, group=support, default=Review.Default.REVOKE, auto_apply=True)
        # As if a worker had claimed it and stopped after the first item.
        first = review.items.order_by("user_email").first()
        Membership.objects.filter(user=first.user, group=support).delete()
        ReviewItem.objects.filter(pk=first.pk).update(outcome="revoked")
        Review.objects.filter(pk=review.pk).update(
            status="applied", applied_at=timezone.now() - timedelta(minutes=5)
        )
        services.reviews_sweep()  # too soon: it may still be running
        assert review.items.filter(outcome="").count() == 1
        later = timezone.now() + timedelta(minutes=10)
        services.reviews_sweep(now=later)
        services.reviews_sweep(now=later)
        assert dict(review.items.values_list("user_email", "outcome")) == {
            "ada@shop.example": "revoked",
            "bob@shop.example": "revoked",
        }
        assert not Membership.objects.filter(group=support).exists()
        applied = AuditEvent.objects.filter(action=AuditAction.REVIEW_APPLIED)
        assert [e.details["revoked"] for e in applied] == [1]

    def test_an_admin_finishes_a_manual_applying_cut_short(self, admin, root_user):
        support = support_group()
        UserFactory(email="ada@shop.example", groups=[support])
        review = start(root_user, group=support, default=Review.Default.REVOKE)
        Review.objects.filter(pk=review.pk).update(status="applied", applied_at=timezone.now())
        assert "Apply the results" in admin.get(f"/reviews/{review.pk}/").content.decode()
        admin.post(f"/reviews/{review.pk}/apply/")
        assert review.items.get().outcome == "revoked"
        assert "Apply the results" not in admin.get(f"/reviews/{review.pk}/").content.decode()
        admin.post(f"/reviews/{review.pk}/apply/")
        assert AuditEvent.objects.filter(action=AuditAction.REVIEW_APPLIED).count() == 1
