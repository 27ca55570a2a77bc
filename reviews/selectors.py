"""Reads of access reviews for the screens."""

from __future__ import annotations

from django.db import connection
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


# What has_open_items asks, in SQL: it runs on every dashboard view, where
# building the same question through the ORM cost about 1.5 ms of CPU, a
# third of the warm dashboard's (benchmarks/README.md); this costs ~0.1 ms.
_OPEN_ITEMS = """
SELECT 1 FROM {item} i JOIN {review} r ON r.id = i.review_id
WHERE r.status = 'active' AND i.decision = '' AND (
  (r.reviewer_mode = 'self' AND i.user_id = %s)
  OR (r.reviewer_mode = 'named' AND (i.user_id IS NULL OR i.user_id <> %s)
      AND EXISTS (SELECT 1 FROM {reviewers} rr
                  WHERE rr.accessreview_id = r.id AND rr.user_id = %s)))
LIMIT 1
"""


def has_open_items(user) -> bool:
    """Whether `user` has an undecided item they may decide (the same
    question as items_to_decide, undecided only; tests/test_reviews.py
    checks that both agree)."""
    sql = _OPEN_ITEMS.format(
        item=ReviewItem._meta.db_table,
        review=AccessReview._meta.db_table,
        reviewers=AccessReview.reviewers.through._meta.db_table,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [user.pk, user.pk, user.pk])
        return cursor.fetchone() is not None
