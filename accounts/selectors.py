"""Reads about accounts. Case-insensitive lookups go through here only."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta

from django.db import connection, transaction
from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone

from accounts.audit import KNOWN_ACTIONS
from accounts.models import (
    AccessRequest,
    AuditEvent,
    EmailChange,
    Group,
    Membership,
    Role,
    User,
    normalize_email,
)

USER_SORTS = {
    "email": ("email",),
    "-email": ("-email",),
    "name": ("last_name", "first_name", "id"),
    "-name": ("-last_name", "-first_name", "-id"),
    "created": ("created_at", "id"),
    "-created": ("-created_at", "-id"),
    "last_login": ("last_login", "id"),
    "-last_login": ("-last_login", "-id"),
}


def user_get_by_email(email: str) -> User | None:
    """The account for an address, whatever case it was typed in."""
    return User.objects.filter(email=normalize_email(email)).first()


def email_change_pending(user) -> EmailChange | None:
    """The change of address waiting for its link (accounts.services.emails),
    unless it has expired or no longer applies to the account's address."""
    change = EmailChange.objects.filter(user=user, old_email=user.email).first()
    if change is None or timezone.now() >= change.expires_at:
        return None
    return change


def groups_by_names(names) -> list[Group]:
    """The groups with these exact names; LookupError names the unknown ones."""
    wanted = list(dict.fromkeys(n.strip() for n in names if n and n.strip()))
    found = {g.name: g for g in Group.objects.filter(name__in=wanted)}
    missing = [n for n in wanted if n not in found]
    if missing:
        raise LookupError(", ".join(missing))
    return [found[n] for n in wanted]


ENDING_WITHIN = timedelta(days=7)


def user_search(
    *,
    q: str = "",
    status: str = "",
    group: Group | None = None,
    ending: bool = False,
    sort: str = "email",
) -> QuerySet[User]:
    """The users list: search in email and names, filter, sort. Groups come
    in one extra query for the whole page, as `user.group_list`. `ending`:
    only accounts with a membership ending within ENDING_WITHIN (a range on
    the partial index of `Membership.ends_at`, in a subquery)."""
    users = User.objects.only(
        "id", "email", "first_name", "last_name", "status", "last_login", "created_at"
    )
    for word in (q or "").split()[:5]:
        users = users.filter(
            Q(email__icontains=word) | Q(first_name__icontains=word) | Q(last_name__icontains=word)
        )
    if status in User.Status.values:
        users = users.filter(status=status)
    if group is not None:
        users = users.filter(memberships__group=group)
    if ending:
        now = timezone.now()
        users = users.filter(
            pk__in=Membership.objects.filter(
                ends_at__gt=now, ends_at__lte=now + ENDING_WITHIN
            ).values("user_id")
        )
    return users.order_by(*USER_SORTS.get(sort, USER_SORTS["email"])).prefetch_related(
        Prefetch(
            "groups",
            queryset=Group.objects.only("id", "name").order_by("name"),
            to_attr="group_list",
        )
    )


def memberships_shown(memberships, now=None) -> list[Membership]:
    """Memberships with `state` set for the screens: "ended" (its end has
    passed, whether or not the worker removed it yet), "active" (an
    eligible-only group activated now), "eligible" (not activated), or
    "member"."""
    now = now or timezone.now()
    shown = list(memberships)
    for m in shown:
        if m.ends_at is not None and m.ends_at <= now:
            m.state = "ended"
        elif m.group.eligible_only:
            active = m.active_until is not None and m.active_until > now
            m.state = "active" if active else "eligible"
        else:
            m.state = "member"
    return shown


def user_memberships(user) -> list[Membership]:
    """A user's memberships by group name, with their `state`."""
    return memberships_shown(
        Membership.objects.filter(user=user).select_related("group").order_by("group__name")
    )


def group_members(group, limit: int = 20) -> list[Membership]:
    """A group's first memberships by email, with their `state`."""
    return memberships_shown(
        Membership.objects.filter(group=group)
        .select_related("user", "group")
        .order_by("user__email")[:limit]
    )


def pending_grants(user) -> list[AccessRequest]:
    """Grants to `user` waiting for a second administrator, oldest first."""
    return list(
        AccessRequest.objects.filter(
            user=user, kind=AccessRequest.Kind.GRANT, status=AccessRequest.Status.PENDING
        )
        .select_related("group")
        .order_by("created_at", "id")
    )


def groups_with_counts() -> QuerySet[Group]:
    return Group.objects.annotate(
        member_count=Count("memberships", distinct=True)
    ).prefetch_related(Prefetch("roles", queryset=Role.objects.only("id", "name")))


def roles_with_counts() -> QuerySet[Role]:
    return Role.objects.annotate(group_count=Count("groups", distinct=True)).prefetch_related(
        "rules"
    )


WHOLE_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


def _label_matches(field: str, text: str) -> Q:
    """A whole e-mail address (something@domain.tld) matches that address,
    any other text the beginning of the label; case is ignored."""
    text = text.strip()
    whole = WHOLE_ADDRESS.fullmatch(text) is not None
    return Q(**{f"{field}__{'iexact' if whole else 'istartswith'}": text})


def audit_search(
    *,
    actor: str = "",
    action: str = "",
    target: str = "",
    since=None,
    until=None,
    request_id: str = "",
) -> QuerySet[AuditEvent]:
    """Audit events, newest first. Dates are whole UTC days, both inclusive;
    a request id matches exactly (the id of a log line, iam.logs).

    Actor and target match a whole e-mail address exactly, anything else as
    the beginning of the label, in any case; an action code exactly, and an
    unknown one (an old link's "mfa.") as the beginning of the code. Never
    "contains": on ten million events no ordered index serves it, and these
    do (AuditEvent.Meta, benchmarks/audit_scale.py)."""
    events = AuditEvent.objects.all()
    if request_id:
        events = events.filter(request_id=request_id.strip())
    if actor:
        events = events.filter(_label_matches("actor_label", actor))
    if action:
        action = action.strip()
        exact = action in KNOWN_ACTIONS
        events = events.filter(**{"action" if exact else "action__startswith": action})
    if target:
        events = events.filter(_label_matches("target_label", target))
    if since:
        events = events.filter(created_at__gte=datetime.combine(since, time.min, tzinfo=UTC))
    if until:
        events = events.filter(
            created_at__lt=datetime.combine(until + timedelta(days=1), time.min, tzinfo=UTC)
        )
    return events.order_by("-created_at", "-id")


def audit_stream(events: QuerySet[AuditEvent], *, chunk_size: int = 2000):
    """Every event of `events`, read a chunk at a time: memory stays flat
    however many (the CSV export streams millions). On PostgreSQL in one
    transaction, so the server-side cursor is a plain one that the database
    reads as the client does: outside a transaction Django declares it WITH
    HOLD, and PostgreSQL then computes the whole result before the first row
    (seconds of silence, a temporary file, the statement timeout). The
    snapshot is one point in time; a reader that stalls for a minute ends
    the transaction (idle_in_transaction_session_timeout), so no client
    holds back vacuum longer."""
    if connection.vendor != "postgresql":
        yield from events.iterator(chunk_size=chunk_size)
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL idle_in_transaction_session_timeout = '60s'")
        yield from events.iterator(chunk_size=chunk_size)


def user_mfa_types(user) -> set[str]:
    """The kinds of authenticator a user has ("totp", "recovery_codes", …)."""
    from allauth.mfa.models import Authenticator

    return set(Authenticator.objects.filter(user=user).values_list("type", flat=True))


def user_local_credentials(user) -> list[str]:
    """What opens an account without an identity provider, sorted: "password"
    (a usable one) and the kinds of its authenticators. An SSO link or a SCIM
    client may take over an account only when this is empty, or with proof."""
    kinds = user_mfa_types(user)
    if user.has_usable_password():
        kinds.add("password")
    return sorted(kinds)


def user_recent_events(user, limit: int = 10) -> list[AuditEvent]:
    """The latest events by or about one user, newest first (their detail page)."""
    about = Q(target_type="user", target_id=str(user.pk)) | Q(actor=user)
    return list(AuditEvent.objects.filter(about).order_by("-created_at", "-id")[:limit])
