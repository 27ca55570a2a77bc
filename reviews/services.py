"""Access reviews: start, decide, stop, end, apply, and the worker's sweep.

The rules (README "Access reviews"):
- Starting needs backoffice:reviews:create, and the power to take each
  reviewed membership away by hand: backoffice:users:edit and every group
  within the starter's permissions (the grant bound the Groups tab asks).
  For "every group whose rights reach a resource", groups beyond the
  starter are left out and named in the review (`skipped_groups`).
- Reviewers decide without any right: the review names them. A named
  reviewer never decides their own membership; in a self-review each
  member decides their own, and nothing else.
- Applying revokes through the same service as the Groups tab
  (accounts.services.users.user_update) in an access write of its own per
  item, acting as the review's owner read fresh then: their bound, the rank
  rule, the root invariant and the self-demotion check all hold, and a
  refusal is the item's outcome ("not applied: <reason>"), never a crash.
- Every claim (end, apply, reminder, next instance) is a conditional write,
  so two workers do each once.
"""

from __future__ import annotations

import calendar
import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from accounts.audit import Actor, AuditAction, audit
from accounts.delegation import (
    access_write,
    bound_of,
    group_beyond,
    groups_reaching,
    names,
    user_permissions,
    user_potential_permissions,
)
from accounts.errors import AccessRefused, AccountError
from accounts.inputs import has_control
from accounts.mail import queue_template_mail
from accounts.models import Group, Membership, User
from accounts.resources import REGISTRY
from accounts.services.common import clean_label
from accounts.services.users import user_update
from reviews.models import AccessReview, ReviewItem

log = logging.getLogger("iam.reviews")

Review = AccessReview
Item = ReviewItem

START = "backoffice:reviews:create"
STARTING = gettext_noop("start, stop or apply access reviews")
TAKE_GROUP = gettext_noop("take away group %(name)s")
# No login for this long (or never): the recommendation is to revoke.
STALE_AFTER = timedelta(days=30)
JUSTIFICATION_MAX = 500
# The longest instance of each recurrence: one ends before the next begins.
LONGEST = {
    Review.Recurrence.ONCE: 365,
    Review.Recurrence.MONTHLY: 28,
    Review.Recurrence.QUARTERLY: 90,
    Review.Recurrence.YEARLY: 365,
}
MONTHS = {
    Review.Recurrence.MONTHLY: 1,
    Review.Recurrence.QUARTERLY: 3,
    Review.Recurrence.YEARLY: 12,
}
REVIEWERS_MAX = 50
# An automatic applying still unfinished this long after it began was cut
# short (a worker stopped): the next sweep applies the items left.
RESUME_AFTER = timedelta(minutes=10)


# --- start ----------------------------------------------------------------------------


def _justification(value: str) -> str:
    value = (value or "").strip()
    if not value:
        raise AccountError(_("A justification is required."), field="justification")
    if len(value) > JUSTIFICATION_MAX:
        raise AccountError(
            _("The justification is too long (at most %(limit)d characters).")
            % {"limit": JUSTIFICATION_MAX},
            field="justification",
        )
    if has_control(value.replace("\r\n", "\n").replace("\n", "")):
        raise AccountError(
            _("The justification holds a character that is not allowed."), field="justification"
        )
    return value


def add_months(when: datetime, months: int) -> datetime:
    """The same day `months` later (the month's last day when it has fewer)."""
    month = when.month - 1 + months
    year, month = when.year + month // 12, month % 12 + 1
    day = min(when.day, calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)


def next_start(review: AccessReview) -> datetime | None:
    """When a recurring review's next instance begins (None: once)."""
    months = MONTHS.get(review.recurrence)
    return add_months(review.starts_at, months) if months else None


def recommend(user: User, now: datetime) -> str:
    """No login for STALE_AFTER (or never): revoke; else approve."""
    if user.last_login is None or user.last_login < now - STALE_AFTER:
        return Item.Recommendation.REVOKE
    return Item.Recommendation.APPROVE


def _kind(membership: Membership) -> str:
    if membership.group.eligible_only:
        return "eligible"
    return "time-bound" if membership.ends_at else "standing"


def _scope(writer, *, group: Group | None, resource: str) -> tuple[list[Group], list[str], str]:
    """The groups reviewed, the groups left out (beyond the starter), and the
    scope's label, in English: it is data of the report (the screens say it
    in the reader's language: AccessReview.scope_group)."""
    if group is not None:
        if resource:
            raise AccountError(_("Choose a group or a resource, not both."), field="resource")
        if not Group.objects.filter(pk=group.pk).exists():
            raise AccountError(_("This group no longer exists."), field="group")
        writer.within_groups([group], TAKE_GROUP)
        return [group], [], f"group {group.name}"
    if resource not in REGISTRY:
        raise AccountError(_("Choose a group or a resource."), field="group")
    reaching = list(Group.objects.filter(pk__in=groups_reaching(resource)).order_by("name"))
    beyond = writer.groups_beyond(reaching)
    groups = [g for g in reaching if g not in beyond]
    if not groups:
        raise AccountError(
            _("No group whose rights reach %(resource)s lies within your permissions.")
            % {"resource": resource},
            field="resource",
        )
    return groups, sorted(g.name for g in beyond), f"groups reaching {resource}"


def review_start(
    *,
    name: str,
    group: Group | None = None,
    resource: str = "",
    reviewer_mode: str,
    reviewers=(),
    recurrence: str = Review.Recurrence.ONCE,
    duration_days: int,
    default: str = Review.Default.KEEP,
    auto_apply: bool = False,
    by: Actor,
    starts_at: datetime | None = None,
    previous: AccessReview | None = None,
) -> AccessReview:
    """Start a review now: its items are the memberships of its groups that
    have not ended (eligibilities and time-bound ones included), each with
    its recommendation. Mails each reviewer once it is committed."""
    name = clean_label(name, "Name")
    if reviewer_mode not in Review.Reviewers.values:
        raise AccountError(_("Choose who reviews."), field="reviewer_mode")
    if recurrence not in Review.Recurrence.values:
        raise AccountError(_("Choose how often."), field="recurrence")
    if default not in Review.Default.values:
        raise AccountError(_("Choose what happens to unanswered items."), field="default")
    longest = LONGEST[recurrence]
    if not isinstance(duration_days, int) or not 1 <= duration_days <= longest:
        raise AccountError(
            _("The duration must be between 1 and %(days)d days for this recurrence.")
            % {"days": longest},
            field="duration_days",
        )
    reviewers = list(reviewers) if reviewer_mode == Review.Reviewers.NAMED else []
    if reviewer_mode == Review.Reviewers.NAMED:
        if not reviewers:
            raise AccountError(_("Name at least one reviewer."), field="reviewers")
        if len(reviewers) > REVIEWERS_MAX:
            raise AccountError(
                _("At most %(count)d reviewers.") % {"count": REVIEWERS_MAX}, field="reviewers"
            )
        people = User.objects.people().filter(
            pk__in=[r.pk for r in reviewers], status=User.Status.ACTIVE
        )
        reviewers = list(people.order_by("email"))
        if not reviewers:
            raise AccountError(_("Reviewers must be active people."), field="reviewers")
    now = starts_at or timezone.now()
    with access_write(by=by, target_label=name) as writer:
        writer.require(START, STARTING)
        writer.require("backoffice:users:edit", "change groups")
        groups, skipped, label = _scope(writer, group=group, resource=resource)
        review = Review.objects.create(
            name=name,
            group=group,
            resource=resource if group is None else "",
            scope_label=label[:300],
            skipped_groups=skipped,
            owner=by.user,
            owner_label=str(by)[:254],
            reviewer_mode=reviewer_mode,
            reviewer_labels=[r.email for r in reviewers],
            recurrence=recurrence,
            duration_days=duration_days,
            default=default,
            auto_apply=auto_apply,
            starts_at=now,
            ends_at=now + timedelta(days=duration_days),
            previous=previous,
        )
        review.reviewers.set(reviewers)
        memberships = (
            Membership.objects.current(now)
            .filter(group__in=groups)
            .select_related("user", "group")
            .order_by("group__name", "user__email")
        )
        items = ReviewItem.objects.bulk_create(
            [
                ReviewItem(
                    review=review,
                    user=m.user,
                    user_email=m.user.email,
                    group=m.group,
                    group_name=m.group.name,
                    membership_id=m.pk,
                    membership_kind=_kind(m),
                    membership_ends_at=m.ends_at,
                    last_login=m.user.last_login,
                    recommendation=recommend(m.user, now),
                )
                for m in memberships
            ]
        )
        details = {
            "review": review.pk,
            "scope": review.scope_label,
            "reviewers": review.reviewer_labels or "self",
            "recurrence": recurrence,
            "default": default,
            "items": len(items),
        }
        if skipped:
            details["skipped"] = skipped
        if previous is not None:
            details["previous"] = previous.pk
        audit(AuditAction.REVIEW_STARTED, by=by, target=review, details=details)
        _mail_reviewers(review, "started", by=by)
    return review


# --- who decides ------------------------------------------------------------------------


def may_decide(review: AccessReview, item: ReviewItem, user) -> bool:
    """A self-review: one's own item only. Named reviewers: anyone's but
    their own."""
    if user is None or item.review_id != review.pk or item.user_id is None:
        return False
    if review.self_review:
        return item.user_id == user.pk
    return item.user_id != user.pk and review.reviewers.filter(pk=user.pk).exists()


def item_decide(*, item: ReviewItem, decision: str, justification: str, by: Actor) -> ReviewItem:
    """A reviewer's decision (they may change it until the review ends)."""
    if decision not in Item.Decision.values:
        raise AccountError(_("Choose approve, revoke or don't know."), field="decision")
    justification = _justification(justification)
    user = by.user
    if user is None or by.bounded_by_cap or by.client or not user.may_log_in:
        raise AccessRefused(_("Only a reviewer at the screens can decide."), reason="right")
    review = item.review
    if not may_decide(review, item, user):
        raise AccessRefused(_("You are not a reviewer of this item."), reason="right")
    now = timezone.now()
    with transaction.atomic():
        done = ReviewItem.objects.filter(
            pk=item.pk,
            review__status=Review.Status.ACTIVE,
            review__ends_at__gt=now,
        ).update(
            decision=decision,
            justification=justification,
            decided_by=user,
            decided_by_label=str(by)[:254],
            decided_at=now,
        )
        if not done:
            raise AccountError(_("This review has ended."), code="conflict")
        item.refresh_from_db()
        audit(
            AuditAction.REVIEW_DECIDED,
            by=by,
            target_type="user",
            target_id=item.user_id or "",
            target_label=item.user_email,
            details={
                "review": review.pk,
                "group": item.group_name,
                "decision": decision,
                "justification": justification,
            },
        )
    return item


# --- stop, end, apply ---------------------------------------------------------------


def _manager_check(review: AccessReview, by: Actor) -> None:
    """Stopping or applying by hand: backoffice:reviews:create, and every
    reviewed group within the actor's permissions (a narrower admin cannot
    stop or trigger a wider one's review)."""
    held, _exists = bound_of(by)
    if START not in held:
        raise AccessRefused(
            _("You may not %(doing)s: that needs %(resource)s, which you do not hold.")
            % {"doing": _(STARTING), "resource": START},
            reason="right",
        )
    ids = set(review.items.exclude(group=None).values_list("group_id", flat=True))
    if review.group_id:
        ids.add(review.group_id)
    for group in Group.objects.filter(pk__in=ids).order_by("name"):
        if group_beyond(held, group):
            raise AccessRefused(
                _("This review covers group %(name)s, which reaches beyond your permissions.")
                % {"name": group.name},
                reason="grant_bound",
            )


def review_stop(*, review: AccessReview, by: Actor) -> AccessReview:
    """Stop a review in progress, or one ended and not applied: nothing is
    applied, and a recurring review starts no further instance."""
    _manager_check(review, by)
    now = timezone.now()
    with transaction.atomic():
        done = Review.objects.filter(
            pk=review.pk, status__in=[Review.Status.ACTIVE, Review.Status.ENDED]
        ).update(
            status=Review.Status.STOPPED,
            ended_at=now,
            next_started=True,
            stopped_by_label=str(by)[:254],
        )
        if not done:
            raise AccountError(_("This review can no longer be stopped."), code="conflict")
        review.refresh_from_db()
        audit(
            AuditAction.REVIEW_ENDED,
            by=by,
            target=review,
            details={"review": review.pk, "stopped": True},
        )
    return review


def review_end(*, review: AccessReview, by: Actor, now: datetime | None = None) -> bool:
    """End a review whose time is up (the worker), once; then apply it if it
    applies itself. False if another worker ended it first."""
    now = now or timezone.now()
    with transaction.atomic():
        done = Review.objects.filter(
            pk=review.pk, status=Review.Status.ACTIVE, ends_at__lte=now
        ).update(status=Review.Status.ENDED, ended_at=now)
        if not done:
            return False
        review.refresh_from_db()
        counts = _counts(review)
        audit(
            AuditAction.REVIEW_ENDED,
            by=by,
            target=review,
            details={"review": review.pk, "decided": counts["decided"], "items": counts["items"]},
        )
    if review.auto_apply:
        _apply(review, by=by, now=now)
    return True


def _counts(review: AccessReview) -> dict:
    items = review.items.count()
    decided = review.items.exclude(decision="").count()
    return {"items": items, "decided": decided}


def outcome_wanted(review: AccessReview, item: ReviewItem) -> str:
    """What an item's decision, or the review's default, asks: approve or
    revoke. "Don't know" counts as unanswered."""
    if item.decision in (Item.Decision.APPROVE, Item.Decision.REVOKE):
        return item.decision
    if review.default == Review.Default.REVOKE:
        return Item.Decision.REVOKE
    if review.default == Review.Default.RECOMMENDATION:
        return item.recommendation
    return Item.Decision.APPROVE


def unapplied(review: AccessReview) -> bool:
    """An applied review whose applying was cut short: items left without outcome."""
    return review.status == Review.Status.APPLIED and review.items.filter(outcome="").exists()


def review_apply(*, review: AccessReview, by: Actor) -> AccessReview:
    """Apply an ended review by hand (an admin's POST), or the items left of
    one whose applying was cut short."""
    _manager_check(review, by)
    resume = unapplied(review)
    if review.status != Review.Status.ENDED and not resume:
        raise AccountError(_("Only an ended review that is not applied yet can be applied."))
    if not _apply(review, by=by, also=by, resume=resume):
        raise AccountError(_("This review was applied already."), code="conflict")
    review.refresh_from_db()
    return review


def _owner_actor(review: AccessReview, by: Actor) -> Actor | None:
    """The review's owner, read now, acting through `by`'s door."""
    owner = User.objects.filter(pk=review.owner_id).first() if review.owner_id else None
    if owner is None:
        return None
    return Actor(
        user=owner,
        ip=by.ip,
        user_agent=by.user_agent,
        site=by.site,
        label=f"access review {review.pk}",
        channel=by.channel or "worker",
    )


def _apply(
    review: AccessReview,
    *,
    by: Actor,
    also: Actor | None = None,
    resume: bool = False,
    now: datetime | None = None,
) -> bool:
    """Claim the review (ended → applied), then each item once. `also`: the
    person who pressed "Apply" must be able to take each membership away
    too, so applying by hand never reaches beyond them either. `resume`:
    the review was claimed before and its applying was cut short (a worker
    stopped mid-way): the items left are applied now.

    Each item is claimed by a conditional write in the same transaction as
    its revocation: two appliers never both act on one item, and an item
    is never left claimed without its outcome. `now`: the sweep's clock,
    so a sweep never takes the applying it just began for one cut short."""
    now = now or timezone.now()
    if not resume:
        claimed = Review.objects.filter(pk=review.pk, status=Review.Status.ENDED).update(
            status=Review.Status.APPLIED, applied_at=now, applied_by_label=str(by)[:254]
        )
        if not claimed:
            return False
    acting = _owner_actor(review, by)
    tally = {"kept": 0, "revoked": 0, "not_applied": 0}
    for item in review.items.filter(outcome="").select_related("user", "group"):
        with transaction.atomic():
            mine = ReviewItem.objects.filter(pk=item.pk, outcome="").update(
                outcome=Item.Outcome.NOT_APPLIED
            )
            if not mine:
                continue  # another applier has it
            # The report's reasons are in English, whoever pressed the button.
            with translation.override("en"):
                outcome, reason = _apply_item(review, item, acting, also)
            ReviewItem.objects.filter(pk=item.pk).update(
                outcome=outcome, outcome_reason=reason[:500]
            )
        tally[outcome] += 1
    if resume and not any(tally.values()):
        return False
    audit(
        AuditAction.REVIEW_APPLIED,
        by=by,
        target=review,
        details={"review": review.pk, **tally},
    )
    return True


def _apply_item(
    review: AccessReview, item: ReviewItem, acting: Actor | None, also: Actor | None = None
) -> tuple[str, str]:
    wanted = outcome_wanted(review, item)
    if wanted != Item.Decision.REVOKE:
        return Item.Outcome.KEPT, ""
    if acting is None:
        return Item.Outcome.NOT_APPLIED, _("the review's owner no longer exists")
    user = item.user
    if user is None or item.group_id is None:
        return Item.Outcome.NOT_APPLIED, _("the user or the group no longer exists")
    because = {
        "review": review.pk,
        "review_decision": item.decision or "unanswered",
        "review_item": item.pk,
    }
    try:
        with access_write(by=acting, target=user):
            if also is not None:
                # The same checks as the Groups tab, for the person applying
                # (one lock: a nested write joins this one).
                with access_write(by=also, target=user) as writer:
                    writer.require("backoffice:users:edit", "change groups")
                    writer.outranks(user)
                    writer.within_groups([item.group], TAKE_GROUP)
            held = list(Membership.objects.filter(user=user).select_related("group"))
            reviewed = next((m for m in held if m.pk == item.membership_id), None)
            if reviewed is None:
                return Item.Outcome.NOT_APPLIED, _("the membership no longer exists as reviewed")
            was = item.membership_ends_at
            if was is not None and (reviewed.ends_at is None or reviewed.ends_at > was):
                # Made longer since: a newer grant (four eyes count it so),
                # not what the reviewers judged.
                return Item.Outcome.NOT_APPLIED, _("the membership was made longer since the start")
            before = user_permissions(user.pk), user_potential_permissions(user.pk)
            user_update(
                user=user,
                email=None,
                first_name=None,
                last_name=None,
                groups=[m.group for m in held if m.pk != item.membership_id],
                active=None,
                by=acting,
                because=because,
            )
            # A reviewer decides without any right: "revoke" only takes
            # away. Leaving a group whose rules deny would give what the
            # deny held back (a self-reviewer lifting their own restriction).
            gained = (user_permissions(user.pk) - before[0]) | (
                user_potential_permissions(user.pk) - before[1]
            )
            if gained:
                raise AccountError(
                    _("revoking it would give %(permissions)s, which this group denies")
                    % {"permissions": names(gained)}
                )
    except AccountError as exc:  # AccessRefused included: bound, rank, invariant
        return Item.Outcome.NOT_APPLIED, str(exc)
    return Item.Outcome.REVOKED, ""


# --- the worker ------------------------------------------------------------------------


def _reviewers_to_mail(review: AccessReview) -> list[User]:
    """People with an item they could decide that nobody decided yet."""
    open_items = review.items.filter(decision="").exclude(user=None)
    if review.self_review:
        ids = open_items.values("user_id")
        return list(User.objects.filter(pk__in=ids, status=User.Status.ACTIVE).order_by("pk"))
    found = []
    for person in review.reviewers.filter(status=User.Status.ACTIVE).order_by("pk"):
        if open_items.exclude(user=person).exists():
            found.append(person)
    return found


def _mail_reviewers(review: AccessReview, event: str, *, by: Actor) -> int:
    people = _reviewers_to_mail(review)
    context = {
        "event": event,
        "review_name": review.name,
        "scope_resource": review.resource,
        "scope_group": review.scope_group,
        "ends_at": review.ends_at,
        "link": f"{by.site}/reviews/mine/" if by.site else "",
    }

    def queue():
        for person in people:
            queue_template_mail(
                by=by,
                template="reviews/email/review",
                to=person.email,
                context={**context, "user": person},
            )

    transaction.on_commit(queue)
    return len(people)


def remind_due(review: AccessReview, *, by: Actor, now: datetime) -> int:
    """Half-way through: one reminder to reviewers with undecided items."""
    half = review.starts_at + (review.ends_at - review.starts_at) / 2
    if now < half:
        return 0
    with transaction.atomic():
        claimed = Review.objects.filter(
            pk=review.pk, status=Review.Status.ACTIVE, reminded_at=None
        ).update(reminded_at=now)
        if not claimed:
            return 0
        return _mail_reviewers(review, "reminder", by=by)


def _start_next(review: AccessReview, *, now: datetime) -> AccessReview | None:
    """Claim the next instance of a recurring review and start it as its
    owner, read now: an owner who can no longer review these groups starts
    nothing (logged; the refusal is audited by the access write)."""
    if not Review.objects.filter(pk=review.pk, next_started=False).update(next_started=True):
        return None
    acting = _owner_actor(review, Actor(channel="worker"))
    if acting is None:
        log.warning("access review %s: owner gone; no next instance", review.pk)
        return None
    acting = Actor(user=acting.user, channel="worker")
    group = review.group if review.group_id else None
    try:
        return review_start(
            name=review.name,
            group=group,
            resource=review.resource,
            reviewer_mode=review.reviewer_mode,
            reviewers=list(review.reviewers.all()),
            recurrence=review.recurrence,
            duration_days=review.duration_days,
            default=review.default,
            auto_apply=review.auto_apply,
            by=acting,
            starts_at=now,
            previous=review,
        )
    except AccountError as exc:
        log.warning("access review %s: next instance not started (%s)", review.pk, exc)
        return None


def reviews_sweep(*, now: datetime | None = None) -> int:
    """The worker's pass: reminders, ends (and auto-apply), next instances.
    Safe to run anywhere, any number of times at once. Returns how many
    things it did."""
    now = now or timezone.now()
    by = Actor.system(label="access reviews", channel="worker")
    done = 0
    for review in Review.objects.filter(status=Review.Status.ACTIVE, reminded_at=None)[:200]:
        if review.ends_at > now and remind_due(review, by=by, now=now):
            done += 1
    for review in Review.objects.filter(status=Review.Status.ACTIVE, ends_at__lte=now)[:200]:
        done += review_end(review=review, by=by, now=now)
    # Applying itself, cut short (a worker stopped mid-way): the rest, later.
    stalled = Review.objects.filter(
        status=Review.Status.APPLIED,
        auto_apply=True,
        applied_at__lte=now - RESUME_AFTER,
        items__outcome="",
    ).distinct()
    for review in stalled[:50]:
        done += _apply(review, by=by, resume=True)
    recurring = Review.objects.filter(
        next_started=False,
        status__in=[Review.Status.ENDED, Review.Status.APPLIED],
    ).exclude(recurrence=Review.Recurrence.ONCE)
    for review in recurring[:200]:
        due = next_start(review)
        if due is not None and due <= now and _start_next(review, now=now) is not None:
            done += 1
    return done
