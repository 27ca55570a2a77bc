"""Privileged access on demand: activations of eligible-only groups, grants
that wait for a second admin (four eyes), and the ends of both.

Who may do what (README "Access model", "Privileged access"):
- A member of an eligible-only group activates it for themselves only, at
  the screens, with a justification and a second factor proven within
  FRESH_SECOND_FACTOR; for at most the group's `max_activation_hours`.
- A request waits for approval when the group asks for it (activation) or
  always (a grant in a group with `grant_approval`). It is approved or
  denied by another person who could give that group now: users:edit, the
  group within their permissions (grant bound) and the requester's account
  within them (rank). Never by the person it is for, nor by whoever asked
  for it. The operator (the command line) may decide too: that is how the
  last manager gets back in when nobody else could approve.
- The API and SCIM neither activate nor approve: a token or a provisioning
  client is not a person with a fresh second factor.
- Ends (a time-bound membership, an activation) take effect at their time
  without a write (accounts.access); `expire_due` records them afterwards,
  each once, and mails the people concerned.

All writes run in `accounts.delegation.access_write`, so the root invariant,
the four-eyes rule and the serialisation of access writes hold here too.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from accounts import access
from accounts.audit import Actor, AuditAction, audit
from accounts.delegation import access_write
from accounts.errors import AccessRefused, AccountError
from accounts.inputs import has_control
from accounts.mail import queue_template_mail
from accounts.models import AccessRequest, Group, Membership, User
from accounts.services.common import reload

# A second factor proven longer ago than this does not count for an activation.
FRESH_SECOND_FACTOR = 10 * 60
# A request nobody decided within this time expires.
PENDING_FOR = timedelta(hours=24)
JUSTIFICATION_MAX = 1000
TICKET_MAX = 64
NOTE_MAX = 500
GIVE_GROUP = gettext_noop("give group %(name)s")
Status = AccessRequest.Status


def _text(value: str, *, field: str, limit: int, label: str, required: bool = False) -> str:
    value = " ".join((value or "").split()) if field != "justification" else (value or "").strip()
    if required and not value:
        raise AccountError(_("%(label)s is required.") % {"label": _(label)}, field=field)
    if len(value) > limit:
        raise AccountError(
            _("%(label)s is too long (at most %(limit)d characters).")
            % {"label": _(label), "limit": limit},
            field=field,
        )
    # Control characters (ESC, NUL…) and bidi overrides could forge lines of
    # `manage.py access requests` or make the approvers read another text
    # (accounts.inputs.has_control); a justification keeps its line breaks.
    if has_control(value.replace("\r\n", "\n").replace("\n", "").replace("\t", "")):
        raise AccountError(
            _("%(label)s holds a character that is not allowed.") % {"label": _(label)}, field=field
        )
    return value


def _person(by: Actor, doing: str) -> None:
    """Activations and decisions are a person's, at the screens (or the
    operator's, for decisions): never an API token's or a SCIM client's."""
    if by.operator and by.user is None:
        return
    if by.user is None or by.bounded_by_cap or by.client:
        raise AccessRefused(
            _("Only a person at the screens can %(doing)s.") % {"doing": _(doing)},
            reason="right",
        )


def _membership(user: User, group: Group, now: datetime) -> Membership | None:
    return (
        Membership.objects.current(now)
        .select_related("group")
        .filter(user=user, group=group)
        .first()
    )


def _open_request(user: User, group: Group) -> AccessRequest | None:
    return AccessRequest.objects.filter(
        user=user, group=group, status__in=AccessRequest.OPEN
    ).first()


def _details(request: AccessRequest, **more) -> dict:
    details = {"request": request.pk, "group": request.group.name, "kind": request.kind}
    if request.justification:
        details["justification"] = request.justification
    if request.ticket:
        details["ticket"] = request.ticket
    if request.hours:
        details["hours"] = request.hours
    if request.ends_at:
        details["ends_at"] = request.ends_at.isoformat()
    details.update({k: v for k, v in more.items() if v not in (None, "")})
    return details


def _create(**fields) -> AccessRequest:
    """One open request per person and group (a constraint): a second one,
    from a second tab or a second admin, is refused, not queued."""
    try:
        with transaction.atomic():
            return AccessRequest.objects.create(**fields)
    except IntegrityError:
        raise AccountError(
            _("There is already an open request for this group."), code="conflict"
        ) from None


# --- activations ---------------------------------------------------------------------


def access_activate(
    *,
    user: User,
    group: Group,
    justification: str,
    ticket: str = "",
    hours: int,
    mfa_at: float | None,
    by: Actor,
) -> AccessRequest:
    """A member of an eligible-only group asks to hold it for `hours`.
    `mfa_at` is when this session last proved a second factor (a Unix
    time), or None. Active at once, or waiting when the group asks for
    approval."""
    _person(by, gettext_noop("activate access"))
    if by.user is None or by.user.pk != user.pk:
        raise AccessRefused(_("People activate their own access only."), reason="right")
    justification = _text(
        justification,
        field="justification",
        limit=JUSTIFICATION_MAX,
        label="Justification",
        required=True,
    )
    ticket = _text(ticket, field="ticket", limit=TICKET_MAX, label="Ticket")
    if mfa_at is None or not 0 <= time.time() - mfa_at < FRESH_SECOND_FACTOR:
        raise AccountError(
            _("Confirm it is you with your second factor first."), field="second_factor", code="mfa"
        )
    with access_write(by=by, target=user):
        reload(user)
        reload(group)
        now = timezone.now()
        membership = _membership(user, group, now)
        if membership is None or not group.eligible_only or not user.may_log_in:
            raise AccountError(
                _("You are not eligible for group %(name)s.") % {"name": group.name},
                field="group",
                code="not_eligible",
            )
        if membership.active_until and membership.active_until > now:
            raise AccountError(
                _("Group %(name)s is already active for you until %(until)s.")
                % {"name": group.name, "until": timezone.localtime(membership.active_until)},
                code="conflict",
            )
        try:
            hours = int(hours)
        except (TypeError, ValueError):
            hours = 0
        if not 1 <= hours <= group.max_activation_hours:
            raise AccountError(
                _("Choose between 1 and %(max)d hours.") % {"max": group.max_activation_hours},
                field="hours",
            )
        request = _create(
            kind=AccessRequest.Kind.ACTIVATION,
            user=user,
            group=group,
            requested_by=user,
            requested_by_label=user.email,
            justification=justification,
            ticket=ticket,
            hours=hours,
        )
        if group.activation_approval:
            audit(AuditAction.ACCESS_REQUESTED, by=by, target=user, details=_details(request))
            _notify(request, "requested", by=by)
        else:
            _start(request, membership, now=now, by=by)
    return request


def _start(request: AccessRequest, membership: Membership, *, now: datetime, by: Actor) -> None:
    # Never beyond the group's longest activation now: it may have been
    # shortened while the request waited for approval.
    until = now + timedelta(hours=min(request.hours, request.group.max_activation_hours))
    if membership.ends_at is not None:
        until = min(until, membership.ends_at)
    membership.active_until = until
    membership.save(update_fields=["active_until"])
    request.status, request.active_until = Status.ACTIVE, until
    request.save(update_fields=["status", "active_until", "updated_at"])
    access.changed(User.objects.filter(pk=request.user_id))
    audit(
        AuditAction.ACCESS_ACTIVATED,
        by=by,
        target=request.user,
        details=_details(request, until=until.isoformat()),
    )
    _notify(request, "activated", by=by)


# --- grants that need a second admin ---------------------------------------------------


def grant_request(
    *, user: User, group: Group, ends_at: datetime | None, source: str, by: Actor, writer
) -> AccessRequest | None:
    """A membership in a group with `grant_approval`, given by someone other
    than the operator: a request instead, inside the caller's access write
    (its checks already passed). None when one is already open."""
    if _open_request(user, group) is not None:
        return None
    request = _create(
        kind=AccessRequest.Kind.GRANT,
        user=user,
        group=group,
        requested_by=by.user,
        requested_by_label=str(by)[:254],
        ends_at=ends_at,
        source=source,
    )
    audit(AuditAction.ACCESS_REQUESTED, by=by, target=user, details=_details(request))
    _notify(request, "requested", by=by)
    return request


# A denied request from a provisioning source (SCIM, SSO) is not asked again
# by that source for this long: a sync or a login must not mail the
# approvers again and again about what one of them has just refused.
DENIAL_STANDS = timedelta(days=30)


def grant_request_from_source(
    *, user: User, group: Group, ends_at: datetime | None, source: str, by: Actor, writer
) -> AccessRequest | None:
    """A provisioning source (a SCIM client's group map, an SSO ROLE_MAP)
    gives a membership in a group with `grant_approval`: a request instead,
    whoever the source acts as (its trust is the configuration's, not a
    second person's). Once: None while one is open, or while a denial of
    the same source's request stands (DENIAL_STANDS)."""
    denied = AccessRequest.objects.filter(
        user=user,
        group=group,
        source=source,
        kind=AccessRequest.Kind.GRANT,
        status=Status.DENIED,
        decided_at__gt=timezone.now() - DENIAL_STANDS,
    )
    if denied.exists():
        return None
    return grant_request(
        user=user, group=group, ends_at=ends_at, source=source, by=by, writer=writer
    )


def grant_requests_withdraw(
    *, user: User, source: str, keep: set[int], by: Actor
) -> list[AccessRequest]:
    """The grant requests `source` made for `user` that still wait, in groups
    other than `keep` (ids): withdrawn, each audited. The source no longer
    gives that group (the SCIM group or the provider's role is gone)."""
    withdrawn = []
    waiting = AccessRequest.objects.filter(
        user=user, source=source, kind=AccessRequest.Kind.GRANT, status=Status.PENDING
    ).exclude(group_id__in=keep)
    for request in waiting.select_related("group"):
        if not AccessRequest.objects.filter(pk=request.pk, status=Status.PENDING).update(
            status=Status.CANCELLED, updated_at=timezone.now()
        ):
            continue
        request.status = Status.CANCELLED
        audit(
            AuditAction.ACCESS_REQUEST_CANCELLED,
            by=by,
            target=user,
            details=_details(request, source=source),
        )
        withdrawn.append(request)
    return withdrawn


def needs_second_admin(group: Group, by: Actor) -> bool:
    """Whether a membership in `group` given by `by` waits for approval.
    The setting is read from the database (under the access lock, in a
    write), not from the caller's object: a form loaded before another
    admin switched approval on must not give the group without it."""
    if by.operator:
        return False
    return Group.objects.filter(pk=group.pk, grant_approval=True).exists()


# --- decisions --------------------------------------------------------------------------


def _decide(request: AccessRequest, by: Actor, writer, doing: str) -> None:
    """The checks every decision makes, under the lock."""
    reload(request)
    if request.status != Status.PENDING:
        raise AccountError(
            _("This request was already decided (%(status)s).")
            % {"status": request.get_status_display()},
            code="conflict",
        )
    if request.created_at + PENDING_FOR <= timezone.now():
        raise AccountError(_("This request has expired."), code="conflict")
    if by.user is not None and by.user.pk in {request.user_id, request.requested_by_id}:
        raise AccessRefused(
            _("You cannot %(doing)s your own request: another person must.") % {"doing": _(doing)},
            reason="four_eyes",
        )
    writer.require("backoffice:users:edit", doing)
    writer.within_groups([request.group], GIVE_GROUP)
    writer.outranks(request.user)


def _record_decision(request: AccessRequest, *, by: Actor, note: str, now: datetime) -> list[str]:
    """Who decided, when and why, on the request; returns the fields set."""
    request.decided_by, request.decided_by_label = by.user, str(by)[:254]
    request.decided_at, request.decision_note = now, note
    return ["decided_by", "decided_by_label", "decided_at", "decision_note", "updated_at"]


def access_request_approve(*, request: AccessRequest, note: str = "", by: Actor) -> AccessRequest:
    _person(by, gettext_noop("approve access"))
    note = _text(note, field="note", limit=NOTE_MAX, label="Note")
    with access_write(by=by, target=request.user) as writer:
        _decide(request, by, writer, gettext_noop("approve access"))
        now = timezone.now()
        fields = _record_decision(request, by=by, note=note, now=now)
        if request.kind == AccessRequest.Kind.ACTIVATION:
            membership = _membership(request.user, request.group, now)
            if membership is None or not request.group.eligible_only or not request.user.may_log_in:
                raise AccountError(
                    _("%(email)s is no longer eligible for group %(name)s.")
                    % {"email": request.user.email, "name": request.group.name},
                    code="not_eligible",
                )
            request.save(update_fields=fields)
            audit(
                AuditAction.ACCESS_APPROVED,
                by=by,
                target=request.user,
                details=_details(request, note=note),
            )
            _start(request, membership, now=now, by=by)
            return request
        if request.ends_at is not None and request.ends_at <= now:
            raise AccountError(
                _("The membership asked for would already have ended."), code="conflict"
            )
        if not request.user.is_active:
            raise AccountError(_("This account is blocked."), code="conflict")
        membership, made = Membership.objects.get_or_create(
            user=request.user,
            group=request.group,
            defaults={"source": request.source, "ends_at": request.ends_at},
        )
        if not made:
            membership.ends_at = request.ends_at
            membership.save(update_fields=["ends_at"])
        request.status = Status.APPROVED
        request.save(update_fields=["status", *fields])
        access.changed(User.objects.filter(pk=request.user_id))
        audit(
            AuditAction.ACCESS_APPROVED,
            by=by,
            target=request.user,
            details=_details(request, note=note),
        )
        _notify(request, "approved", by=by)
    return request


def access_request_deny(*, request: AccessRequest, note: str = "", by: Actor) -> AccessRequest:
    _person(by, gettext_noop("deny access"))
    note = _text(note, field="note", limit=NOTE_MAX, label="Note")
    with access_write(by=by, target=request.user) as writer:
        _decide(request, by, writer, gettext_noop("deny access"))
        request.status = Status.DENIED
        fields = _record_decision(request, by=by, note=note, now=timezone.now())
        request.save(update_fields=["status", *fields])
        audit(
            AuditAction.ACCESS_DENIED,
            by=by,
            target=request.user,
            details=_details(request, note=note),
        )
        _notify(request, "denied", by=by)
    return request


def access_request_cancel(*, request: AccessRequest, by: Actor) -> AccessRequest:
    """Whoever asked withdraws a request still waiting."""
    with access_write(by=by, target=request.user):
        reload(request)
        if by.user is None or by.user.pk not in {request.requested_by_id, request.user_id}:
            raise AccessRefused(_("Only whoever asked can withdraw a request."), reason="right")
        if request.status != Status.PENDING:
            raise AccountError(_("This request is no longer waiting."), code="conflict")
        request.status = Status.CANCELLED
        request.save(update_fields=["status", "updated_at"])
        audit(
            AuditAction.ACCESS_REQUEST_CANCELLED,
            by=by,
            target=request.user,
            details=_details(request),
        )
    return request


def access_deactivate(*, request: AccessRequest, by: Actor) -> AccessRequest:
    """End an activation early: the person themselves, or an admin who could
    have approved it."""
    own = by.user is not None and by.user.pk == request.user_id
    with access_write(by=by, target=request.user, lowers_self=own) as writer:
        reload(request)
        if request.status != Status.ACTIVE:
            raise AccountError(_("This activation is no longer active."), code="conflict")
        if not own:
            writer.require("backoffice:users:edit", gettext_noop("end activations"))
            writer.within_groups([request.group], GIVE_GROUP)
            writer.outranks(request.user)
        Membership.objects.filter(user_id=request.user_id, group_id=request.group_id).update(
            active_until=None
        )
        request.status = Status.ENDED
        request.save(update_fields=["status", "updated_at"])
        access.changed(User.objects.filter(pk=request.user_id))
        audit(
            AuditAction.ACCESS_ACTIVATION_ENDED,
            by=by,
            target=request.user,
            details=_details(request),
        )
        _notify(request, "ended", by=by)
    return request


# --- ends, recorded afterwards ----------------------------------------------------------


def expire_due(*, now: datetime | None = None) -> int:
    """Record what has ended by `now`, each once: time-bound memberships are
    removed, activations and unanswered requests closed. The rights were
    already gone (accounts.access); this writes the trail and the mails.
    Returns how many it recorded. Safe to run anywhere, any number of times
    at once: each row is claimed by a conditional write."""
    now = now or timezone.now()
    by = Actor.system(label="expiry", channel="worker")
    done = 0
    for membership in Membership.objects.filter(ends_at__lte=now).select_related("user", "group")[
        :500
    ]:
        with transaction.atomic():
            if not Membership.objects.filter(pk=membership.pk, ends_at__lte=now).delete()[0]:
                continue
            access.changed(User.objects.filter(pk=membership.user_id))
            audit(
                AuditAction.MEMBERSHIP_EXPIRED,
                by=by,
                target=membership.user,
                details={
                    "group": membership.group.name,
                    "ended_at": membership.ends_at.isoformat(),
                },
            )
            _notify_membership_end(membership, by=by)
            done += 1
    active = AccessRequest.objects.filter(status=Status.ACTIVE, active_until__lte=now)
    for request in active.select_related("user", "group")[:500]:
        with transaction.atomic():
            claimed = AccessRequest.objects.filter(pk=request.pk, status=Status.ACTIVE).update(
                status=Status.EXPIRED, updated_at=now
            )
            if not claimed:
                continue
            Membership.objects.filter(
                user_id=request.user_id, group_id=request.group_id, active_until__lte=now
            ).update(active_until=None)
            audit(
                AuditAction.ACCESS_ACTIVATION_EXPIRED,
                by=by,
                target=request.user,
                details=_details(request),
            )
            _notify(request, "expired", by=by)
            done += 1
    stale = AccessRequest.objects.filter(status=Status.PENDING, created_at__lte=now - PENDING_FOR)
    for request in stale.select_related("user", "group")[:500]:
        with transaction.atomic():
            if not AccessRequest.objects.filter(pk=request.pk, status=Status.PENDING).update(
                status=Status.EXPIRED, updated_at=now
            ):
                continue
            audit(
                AuditAction.ACCESS_REQUEST_EXPIRED,
                by=by,
                target=request.user,
                details=_details(request),
            )
            _notify(request, "unanswered", by=by)
            done += 1
    return done


# --- who is told ------------------------------------------------------------------------

APPROVERS_MAILED = 20


def approvers(request: AccessRequest) -> list[User]:
    """People who could decide `request` now (see the module's rules), at
    most APPROVERS_MAILED of them: active people in a group that alone
    gives users:edit and the requested group's scope, other than the person
    it is for and whoever asked. The screens' Approvals list asks the
    service itself, so this only chooses whom to mail."""
    from accounts.delegation import group_beyond, rank_beyond, user_permissions

    found = []
    editors = [pk for pk, held in _groups_giving().items() if "backoffice:users:edit" in held]
    people = (
        User.objects.people()
        .filter(
            status=User.Status.ACTIVE,
            pk__in=Membership.objects.effective().filter(group_id__in=editors).values("user_id"),
        )
        .exclude(pk__in=[request.user_id, request.requested_by_id or 0])
        .order_by("pk")
    )
    for person in people[:200].iterator():
        held = user_permissions(person.pk)
        if (
            "backoffice:users:edit" in held
            and not group_beyond(held, request.group)
            and not rank_beyond(held, request.user_id)
        ):
            found.append(person)
            if len(found) >= APPROVERS_MAILED:
                break
    return found


def _groups_giving() -> dict[int, frozenset[str]]:
    """What each group's rules give (allowed and not denied), one query."""
    from collections import defaultdict

    from accounts.delegation import GroupRoles, permissions_of

    rules = defaultdict(list)
    rows = GroupRoles.objects.filter(role__rules__isnull=False).values_list(
        "group_id", "role__rules__effect", "role__rules__pattern"
    )
    for group_id, effect, pattern in rows:
        rules[group_id].append((effect, pattern))
    return {pk: permissions_of(r) for pk, r in rules.items()}


def _notify_membership_end(membership: Membership, *, by: Actor) -> None:
    """Tell the person that a time-bound membership has reached its end."""
    person = membership.user
    context = {
        "event": "membership_ended",
        "kind": "membership",
        "group_name": membership.group.name,
        "person": person.email,
        "person_name": person.full_name,
        "ends_at": membership.ends_at,
    }

    def queue():
        if person.is_active:
            queue_template_mail(
                by=by,
                template="account/email/access_request",
                to=person.email,
                context={**context, "user": person},
            )

    transaction.on_commit(queue)


def _notify(request: AccessRequest, event: str, *, by: Actor) -> None:
    """Mail the person it is for, whoever asked (a grant's admin), and the
    people who could approve, once the write is committed."""
    recipients = {request.user_id: request.user}
    if request.requested_by_id and request.requested_by_id != request.user_id:
        recipients[request.requested_by_id] = request.requested_by
    if event in {"requested", "activated", "approved", "denied", "ended", "expired"}:
        for person in approvers(request):
            recipients.setdefault(person.pk, person)
    context = {
        "event": event,
        "kind": request.kind,
        "group_name": request.group.name,
        "person": request.user.email,
        "person_name": request.user.full_name,
        "requested_by": request.requested_by_label,
        "justification": request.justification,
        "ticket": request.ticket,
        "hours": request.hours,
        "until": request.active_until,
        "ends_at": request.ends_at,
        "decided_by": request.decided_by_label,
        "note": request.decision_note,
        "request_id": request.pk,
    }

    def queue():
        for person in recipients.values():
            if person is not None and person.is_active:
                queue_template_mail(
                    by=by,
                    template="account/email/access_request",
                    to=person.email,
                    context={**context, "user": person},
                )

    transaction.on_commit(queue)
