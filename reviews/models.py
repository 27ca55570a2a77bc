"""Access reviews: a review of memberships, and one item per membership.

A review is one instance; a recurring review's next instance is a new row
that names the one before it (`previous`), so each instance keeps its own
items, decisions and report. Items are a snapshot taken at the start: names
and addresses are copied, so the report still reads after a user or group
is deleted.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AccessReview(models.Model):
    class Recurrence(models.TextChoices):
        ONCE = "once", _("Once")
        MONTHLY = "monthly", _("Monthly")
        QUARTERLY = "quarterly", _("Quarterly")
        YEARLY = "yearly", _("Yearly")

    class Reviewers(models.TextChoices):
        NAMED = "named", _("Named reviewers")
        SELF = "self", _("Self-review (each member reviews their own membership)")

    class Default(models.TextChoices):
        KEEP = "keep", _("Keep access")
        REVOKE = "revoke", _("Revoke access")
        RECOMMENDATION = "recommendation", _("Follow the recommendation")

    class Status(models.TextChoices):
        ACTIVE = "active", _("In progress")
        ENDED = "ended", _("Ended, not applied")
        APPLIED = "applied", _("Applied")
        STOPPED = "stopped", _("Stopped")

    name = models.CharField(max_length=100)
    # The scope: one group, or every group whose rights reach `resource`.
    group = models.ForeignKey(
        "accounts.Group", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resource = models.CharField(max_length=200, blank=True)
    scope_label = models.CharField(max_length=300)
    skipped_groups = models.JSONField(default=list, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    owner_label = models.CharField(max_length=254)
    reviewer_mode = models.CharField(max_length=8, choices=Reviewers.choices)
    reviewers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="access_reviews_to_do"
    )
    reviewer_labels = models.JSONField(default=list, blank=True)
    recurrence = models.CharField(max_length=10, choices=Recurrence.choices)
    duration_days = models.PositiveSmallIntegerField()
    default = models.CharField(max_length=16, choices=Default.choices)
    auto_apply = models.BooleanField(default=False)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    applied_by_label = models.CharField(max_length=254, blank=True)
    stopped_by_label = models.CharField(max_length=254, blank=True)
    # Claims, each taken once by a conditional write (two workers, one mail).
    reminded_at = models.DateTimeField(null=True, blank=True)
    next_started = models.BooleanField(default=False)
    previous = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="next"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-starts_at", "-id"]
        indexes = [models.Index(fields=["status", "ends_at"], name="accessreview_status_ends")]

    def __str__(self):
        return f"{self.name} ({self.starts_at:%Y-%m-%d})"

    @property
    def scope_group(self) -> str:
        """The reviewed group's name as it was at the start ("" for a
        resource scope): the screens word the scope in their language."""
        return "" if self.resource else self.scope_label.removeprefix("group ")

    @property
    def self_review(self) -> bool:
        return self.reviewer_mode == self.Reviewers.SELF


class ReviewItem(models.Model):
    """One membership under review, its decision, and what became of it."""

    class Decision(models.TextChoices):
        APPROVE = "approve", _("Approve")
        REVOKE = "revoke", _("Revoke")
        DONT_KNOW = "dont_know", _("Don't know")

    class Recommendation(models.TextChoices):
        APPROVE = "approve", _("Approve")
        REVOKE = "revoke", _("Revoke")

    class Outcome(models.TextChoices):
        KEPT = "kept", _("Kept")
        REVOKED = "revoked", _("Revoked")
        NOT_APPLIED = "not_applied", _("Not applied")

    review = models.ForeignKey(AccessReview, on_delete=models.CASCADE, related_name="items")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    user_email = models.EmailField(max_length=254)
    group = models.ForeignKey(
        "accounts.Group", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    group_name = models.CharField(max_length=100)
    # The membership as it was at the start: revoking touches only this one
    # (one given again since is a newer decision, not this review's).
    membership_id = models.BigIntegerField()
    membership_kind = models.CharField(max_length=16)  # standing, time-bound, eligible
    membership_ends_at = models.DateTimeField(null=True, blank=True)
    last_login = models.DateTimeField(null=True, blank=True)
    recommendation = models.CharField(max_length=8, choices=Recommendation.choices)
    decision = models.CharField(max_length=10, choices=Decision.choices, blank=True)
    justification = models.TextField(max_length=500, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_by_label = models.CharField(max_length=254, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=12, choices=Outcome.choices, blank=True)
    outcome_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["group_name", "user_email", "id"]

    def __str__(self):
        return f"{self.user_email} in {self.group_name}"
