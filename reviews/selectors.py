"""Reads of access reviews for the screens."""

from __future__ import annotations

from django.db.models import Count, Q

from reviews.models import AccessReview, ReviewItem


def reviews_list():
    """Every review, newest first, with its progress."""
    return AccessReview.objects.annotate(
        item_count=Count("items"),
        decided_count=Count("items", filter=~Q(items__decision="")),
    ).order_by("-starts_at", "-id")


def items_to_decide(user, review: AccessReview | None = None):
    """The items of reviews in progress that `user` may decide: their own in
    a self-review, others' where they are a named reviewer."""
    mine = Q(review__reviewer_mode=AccessReview.Reviewers.SELF, user=user)
    named = Q(review__reviewer_mode=AccessReview.Reviewers.NAMED, review__reviewers=user) & ~Q(
        user=user
    )
    items = ReviewItem.objects.filter(review__status=AccessReview.Status.ACTIVE).filter(
        mine | named
    )
    if review is not None:
        items = items.filter(review=review)
    return (
        items.select_related("review").distinct().order_by("review_id", "group_name", "user_email")
    )


def reviews_to_do(user) -> list[dict]:
    """Reviews in progress where `user` has items, with how many are open."""
    rows = {}
    for item in items_to_decide(user):
        row = rows.setdefault(item.review_id, {"review": item.review, "open": 0, "total": 0})
        row["total"] += 1
        row["open"] += not item.decision
    return list(rows.values())


def has_open_items(user) -> bool:
    return items_to_decide(user).filter(decision="").exists()
