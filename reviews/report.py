"""A review's report, for auditors who do not have the product: the
review's own facts and one row per item, as JSON and as CSV rows whose
column names are stable English (scripts read them). Times are ISO 8601
in UTC; an outcome that was not applied says why."""

from __future__ import annotations

import csv
import json

from reviews.models import AccessReview, ReviewItem
from reviews.services import outcome_wanted

# Every row carries the review's facts too, so one row read alone is whole.
COLUMNS = (
    "review_id",
    "review_name",
    "scope",
    "started_by",
    "started_at_utc",
    "ends_at_utc",
    "recurrence",
    "reviewers",
    "unanswered_default",
    "status",
    "user",
    "group",
    "membership",
    "last_login_utc",
    "recommendation",
    "decision",
    "decided_by",
    "decided_at_utc",
    "justification",
    "outcome",
    "outcome_reason",
)


def _iso(when) -> str:
    return when.isoformat() if when else ""


def review_facts(review: AccessReview) -> dict:
    return {
        "id": review.pk,
        "name": review.name,
        "scope": review.scope_label,
        "groups_left_out": list(review.skipped_groups or []),
        "started_by": review.owner_label,
        "started_at_utc": _iso(review.starts_at),
        "ends_at_utc": _iso(review.ends_at),
        "ended_at_utc": _iso(review.ended_at),
        "applied_at_utc": _iso(review.applied_at),
        "applied_by": review.applied_by_label,
        "stopped_by": review.stopped_by_label,
        "recurrence": review.recurrence,
        "duration_days": review.duration_days,
        "reviewers": "self-review" if review.self_review else list(review.reviewer_labels),
        "unanswered_default": review.default,
        "auto_apply": review.auto_apply,
        "status": review.status,
        "previous_review": review.previous_id,
    }


def item_facts(review: AccessReview, item: ReviewItem) -> dict:
    outcome = item.outcome
    if not outcome and review.status == AccessReview.Status.ACTIVE:
        outcome = "pending"
    elif not outcome:
        outcome = "not applied yet" if review.status == AccessReview.Status.ENDED else "none"
    return {
        "user": item.user_email,
        "group": item.group_name,
        "membership": item.membership_kind
        + (f" until {_iso(item.membership_ends_at)}" if item.membership_ends_at else ""),
        "last_login_utc": _iso(item.last_login) or "never",
        "recommendation": item.recommendation,
        "decision": item.decision or "unanswered",
        "decided_by": item.decided_by_label,
        "decided_at_utc": _iso(item.decided_at),
        "justification": item.justification,
        "would_apply": outcome_wanted(review, item),
        "outcome": outcome,
        "outcome_reason": item.outcome_reason,
    }


def report_json(review: AccessReview) -> dict:
    items = review.items.order_by("group_name", "user_email", "id")
    return {"review": review_facts(review), "items": [item_facts(review, i) for i in items]}


def report_rows(review: AccessReview):
    """The CSV's rows after its header (COLUMNS), as plain values."""
    facts = review_facts(review)
    reviewers = facts["reviewers"]
    head = [
        facts["id"],
        facts["name"],
        facts["scope"],
        facts["started_by"],
        facts["started_at_utc"],
        facts["ends_at_utc"],
        facts["recurrence"],
        reviewers if isinstance(reviewers, str) else " ".join(reviewers),
        facts["unanswered_default"],
        facts["status"],
    ]
    for item in review.items.order_by("group_name", "user_email", "id"):
        row = item_facts(review, item)
        yield head + [row[name] for name in COLUMNS[len(head) :]]


def defused(value) -> str:
    """Spreadsheets run cells that start with = + - @ (as the audit
    export's _safe): a justification is someone's typing, so defuse them."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def write_csv(review: AccessReview, out) -> None:
    """The CSV report into `out` (a file or a response): a comma, UTF-8,
    stable English column names whatever the reader's language."""
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in report_rows(review):
        writer.writerow(defused(v) for v in row)


def json_text(review: AccessReview) -> str:
    return json.dumps(report_json(review), indent=2, ensure_ascii=False)
