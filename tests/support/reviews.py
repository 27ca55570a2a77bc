"""Starting an access review through its service, as the review tests do
(tests/test_reviews.py, tests/test_review_issue24.py): a self-review, once,
14 days, unanswered items kept, unless `fields` say otherwise."""

from accounts.audit import Actor
from reviews import services
from reviews.models import AccessReview as Review


def start(by_user, **fields):
    values = {
        "name": "Quarterly root",
        "reviewer_mode": Review.Reviewers.SELF,
        "recurrence": Review.Recurrence.ONCE,
        "duration_days": 14,
        "default": Review.Default.KEEP,
    }
    values.update(fields)
    return services.review_start(by=Actor(user=by_user, channel="web"), **values)
