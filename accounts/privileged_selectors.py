"""Reads of privileged access on demand (accounts.services.privileged): what
a person may activate, what they asked for, and what they could decide.

`requests_to_decide` asks the rule the decisions ask (privileged._decide)
without writing: users:edit held, the group within the viewer's permissions
(grant bound), the person it is for within them too (rank), and never a
request for the viewer or asked by them. The service still decides, under
its lock: a list is a snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from accounts.delegation import locked_groups, rank_beyond, user_permissions
from accounts.models import AccessRequest, Membership, User

DECIDE = "backoffice:users:edit"
HISTORY = 100  # "My requests" shows the latest this many


@dataclass(frozen=True)
class Eligibility:
    """One eligible-only group of a person, and where it stands now."""

    membership: Membership
    active_until: datetime | None  # active until then, or None
    pending: AccessRequest | None  # an activation waiting for approval

    @property
    def group(self):
        return self.membership.group


def eligible_groups(user: User, now: datetime | None = None) -> list[Eligibility]:
    """The person's current memberships in eligible-only groups, by group
    name, each with its activation's end or its waiting request (two queries)."""
    from accounts.services.privileged import PENDING_FOR

    now = now or timezone.now()
    memberships = list(
        Membership.objects.current(now)
        .filter(user=user, group__eligible_only=True)
        .select_related("group")
        .order_by("group__name")
    )
    waiting = {}
    if memberships:
        waiting = {
            r.group_id: r
            for r in AccessRequest.objects.filter(
                user=user,
                kind=AccessRequest.Kind.ACTIVATION,
                status=AccessRequest.Status.PENDING,
                created_at__gt=now - PENDING_FOR,
            )
        }
    return [
        Eligibility(
            membership=m,
            active_until=m.active_until if m.active_until and m.active_until > now else None,
            pending=waiting.get(m.group_id),
        )
        for m in memberships
    ]


def requests_of(user: User) -> list[AccessRequest]:
    """The requests for this person or asked by them, newest first."""
    from django.db.models import Q

    return list(
        AccessRequest.objects.filter(Q(user=user) | Q(requested_by=user)).select_related(
            "group", "user"
        )[:HISTORY]
    )


def has_privileged_access(user: User) -> bool:
    """Whether "Request access" and "My requests" concern this person: an
    eligible-only membership, or any request (one query)."""
    from django.db.models import Exists, OuterRef, Q

    eligible = Membership.objects.current().filter(user=user, group__eligible_only=True)
    asked = AccessRequest.objects.filter(Q(user=user) | Q(requested_by=user))
    return (
        User.objects.filter(pk=user.pk)
        .filter(Exists(eligible.filter(user=OuterRef("pk"))) | Exists(asked))
        .exists()
    )


def _pending(viewer: User, now: datetime):
    from accounts.services.privileged import PENDING_FOR

    return (
        AccessRequest.objects.filter(
            status=AccessRequest.Status.PENDING, created_at__gt=now - PENDING_FOR
        )
        .exclude(user=viewer)
        .exclude(requested_by=viewer)
    )


def requests_to_decide(
    viewer: User, now: datetime | None = None, held: frozenset[str] | None = None
) -> list[AccessRequest]:
    """The pending requests `viewer` could approve or deny now, oldest
    first (the one expiring soonest on top). Nothing for someone blocked or
    without users:edit. `held`: the viewer's permissions when the caller
    has them (the navigation's compiled rules); else read as a decision
    reads them."""
    now = now or timezone.now()
    if not viewer.is_active:
        return []
    if held is None:
        held = user_permissions(viewer.pk)
    if DECIDE not in held:
        return []
    rows = list(
        _pending(viewer, now)
        .select_related("group", "user", "requested_by")
        .order_by("created_at", "id")
    )
    if not rows:
        return []
    locked = locked_groups(held)  # the grant bound, as the pickers ask it
    rank: dict[int, bool] = {}
    found = []
    for request in rows:
        if request.group_id in locked:
            continue
        if request.user_id not in rank:
            rank[request.user_id] = not rank_beyond(held, request.user_id)
        if rank[request.user_id]:
            found.append(request)
    return found
