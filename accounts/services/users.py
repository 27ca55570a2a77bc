"""Accounts: create, edit, block, delete, and end their sessions.

Every write that can change who may do what runs in
`accounts.delegation.access_write` (the delegation rules live there); an
`Actor.system()` is the operator (the command line, SSO configuration),
trusted like root.
"""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from accounts import access, extensions
from accounts.audit import Actor, AuditAction, audit
from accounts.delegation import access_write
from accounts.errors import AccountError
from accounts.inputs import clean_name
from accounts.models import AccessRequest, Group, Membership, User
from accounts.services.common import (
    about,
    changes,
    delete_audited,
    reload,
    still_there,
    unique_email,
    validate_password,
)
from accounts.services.emails import (
    email_change_request,
    forget_other_addresses,
    refuse_if_managed,
)
from accounts.services.passwords import mail_password_link
from accounts.services.privileged import grant_request, needs_second_admin
from accounts.services.sessions import user_sessions_end


def _snapshot(user: User, groups=None) -> dict:
    """The account as its audit event describes it; `groups` (names) when
    the caller has them already."""
    if groups is None:
        groups = user.groups.values_list("name", flat=True) if user.pk else []
    return {
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "status": user.status,
        "language": user.language,
        "groups": sorted(groups),
    }


GIVE_GROUP = gettext_noop("give group %(name)s")
TAKE_GROUP = gettext_noop("take away group %(name)s")


def _clean_ends(ends: dict | None, groups) -> dict:
    """{group pk: aware datetime or None} for the groups given; an end must
    lie ahead. Keys not among `groups` are ignored."""
    pks = {g.pk for g in groups}
    cleaned = {}
    now = timezone.now()
    for pk, when in (ends or {}).items():
        if pk not in pks:
            continue
        if when is not None:
            if timezone.is_naive(when):
                when = timezone.make_aware(when)
            if when <= now:
                raise AccountError(_("A membership's end must lie in the future."), field="ends")
        cleaned[pk] = when
    return cleaned


def _later(new, old) -> bool:
    """Whether end `new` gives more time than `old` (None: no end)."""
    return old is not None and (new is None or new > old)


def _ends_details(ends: dict, groups) -> dict:
    """The ends given, for the audit event: {"ends": {group name: iso}}."""
    named = {
        g.name: ends[g.pk].isoformat() if ends.get(g.pk) else None for g in groups if g.pk in ends
    }
    return {"ends": named} if named else {}


def user_create(
    *,
    email: str,
    first_name: str,
    last_name: str,
    password: str | None = None,
    groups: list[Group] | tuple = (),
    active: bool = True,
    by: Actor,
    via: str = "screen",
    invite: bool = False,
    language: str = "",
    ends: dict | None = None,
) -> User:
    """Create an account. No password means an unusable one (the person sets
    it through a link, or logs in by SSO; `invite` mails that link, in the
    same write, so an account is never left without the invitation asked
    for). An admin may put it only in groups whose permissions they hold,
    and create it blocked only with users:block. `ends` ({group pk: when})
    makes memberships time-bound; a group with `grant_approval` becomes a
    request a second admin approves (accounts.services.privileged)."""
    user = User(
        email=unique_email(email),
        first_name=about("first_name", clean_name, first_name, "First name"),
        last_name=about("last_name", clean_name, last_name, "Last name"),
        status=User.Status.ACTIVE if active else User.Status.BLOCKED,
        language=_language(language),
    )
    if password is not None:
        validate_password(password, user)
        user.set_password(password)
    else:
        user.set_unusable_password()
    groups = list(groups)
    try:
        with access_write(by=by, target_label=user.email) as writer:
            writer.require("backoffice:users:create", "create accounts")
            if not active:
                writer.require("backoffice:users:block", "create a blocked account")
            still_there(Group, groups)
            writer.within_groups(groups, GIVE_GROUP)
            ends = _clean_ends(ends, groups)
            user.save()
            waiting = [g for g in groups if needs_second_admin(g, by)]
            given = [g for g in groups if g not in waiting]
            Membership.objects.bulk_create(
                [
                    Membership(user=user, group=g, source=Membership.MANUAL, ends_at=ends.get(g.pk))
                    for g in given
                ]
            )
            audit(
                AuditAction.USER_CREATED,
                by=by,
                target=user,
                details={
                    "via": via,
                    "status": user.status,
                    "groups": sorted(g.name for g in given),
                    "password": "set" if password is not None else "none",
                    **_ends_details(ends, given),
                },
            )
            for group in waiting:
                grant_request(
                    user=user,
                    group=group,
                    ends_at=ends.get(group.pk),
                    source=Membership.MANUAL,
                    by=by,
                    writer=writer,
                )
            if invite:
                if not user.is_active:
                    raise AccountError(
                        _("A blocked account cannot be sent an invitation."), code="conflict"
                    )
                mail_password_link(user=user, invitation=True, by=by)
    except IntegrityError:
        # Lost a race with another creation of the same address.
        raise AccountError(
            _("A user with this email already exists."), field="email", code="email_taken"
        ) from None
    return user


def user_update(
    *,
    user: User,
    email: str | None,
    first_name: str | None,
    last_name: str | None,
    groups: list[Group] | None,
    active: bool | None,
    by: Actor,
    language: str | None = None,
    ends: dict | None = None,
    because: dict | None = None,
) -> User:
    """Edit names, email, groups, status and language (any of them None:
    unchanged, read inside the write, so a screen that changes one thing
    neither puts back what it read before the lock nor judges again a
    stored value it did not touch) in one go. Each kind of change
    needs its own right (status: users:block; the rest: users:edit), the
    account must not hold more than the actor, and every group given or
    taken away must lie within the actor's permissions. `ends` ({group pk:
    when, or None for no end}) sets when memberships of `groups` end; a
    group not in it keeps its end. A new or longer membership in a group
    with `grant_approval` becomes a request (the returned user's
    `pending_grants`) unless the operator gives it.

    A new address from a person (the screens, the API) is only asked for:
    it takes effect when the link mailed to it is followed
    (accounts.services.emails), and the returned user's `requested_email`
    says so (None when no change was asked for). The operator and a
    provisioning client (SCIM) write it at once.

    `because` adds facts to the change's one event (an access review that
    revoked a membership names itself and the decision: reviews.services)."""
    new_email = unique_email(email, exclude_pk=user.pk) if email is not None else None
    if first_name is not None:
        first_name = about("first_name", clean_name, first_name, "First name")
    if last_name is not None:
        last_name = about("last_name", clean_name, last_name, "Last name")
    wanted = {g.pk: g for g in groups} if groups is not None else None
    status = None if active is None else User.Status.ACTIVE if active else User.Status.BLOCKED
    language = _language(language) if language is not None else None
    with access_write(by=by, target=user) as writer:
        reload(user)
        new_email = user.email if new_email is None else new_email
        first_name = user.first_name if first_name is None else first_name
        last_name = user.last_name if last_name is None else last_name
        status = user.status if status is None else status
        if language is None:
            language = user.language
        current = {m.group_id: m for m in user.memberships.select_related("group")}
        before = _snapshot(user, [m.group.name for m in current.values()])
        if wanted is None:  # unchanged (the API's PATCH without groups)
            wanted = {gid: m.group for gid, m in current.items()}
        removing = [m for gid, m in current.items() if gid not in wanted]
        adding = [g for gid, g in wanted.items() if gid not in current]
        writer.outranks(user)
        if (new_email, first_name, last_name, language) != (
            user.email,
            user.first_name,
            user.last_name,
            user.language,
        ):
            writer.require("backoffice:users:edit", "change names, email or language")
        ends = _clean_ends(ends, wanted.values())
        # A new end of a membership kept: an earlier one takes away, a later
        # one (or none) gives more; both need the group within the actor's
        # permissions, as giving or taking it would.
        moved = [
            m
            for gid, m in current.items()
            if gid in wanted and gid in ends and ends[gid] != m.ends_at
        ]
        if adding or removing or moved:
            writer.require("backoffice:users:edit", "change groups")
            still_there(Group, adding)
            writer.within_groups(adding, GIVE_GROUP)
            writer.within_groups([m.group for m in removing], TAKE_GROUP)
            writer.within_groups([m.group for m in moved], GIVE_GROUP)
        # Four eyes: a new membership, or a longer one, in a group that asks
        # for it waits for a second admin; shortening takes effect at once.
        waiting = [g for g in adding if needs_second_admin(g, by)]
        waiting += [
            m.group
            for m in moved
            if needs_second_admin(m.group, by) and _later(ends[m.group_id], m.ends_at)
        ]
        adding = [g for g in adding if g not in waiting]
        moved = [m for m in moved if m.group not in waiting]
        if status != user.status:
            writer.require("backoffice:users:block", "block or unblock accounts")
            if status == User.Status.BLOCKED:
                writer.not_self(user, "block")
        # A person asks; the new address itself confirms (issue 20, 1a).
        confirm = new_email != user.email and by.user is not None
        if confirm:
            refuse_if_managed(user)
        wanted_fields = {
            "email": user.email if confirm else new_email,
            "first_name": first_name,
            "last_name": last_name,
            "status": status,
            "language": language,
        }
        # Only the fields that change are written: a full save would put back
        # a password hash read before a concurrent password change.
        edited = [f for f, value in wanted_fields.items() if getattr(user, f) != value]
        for field in edited:
            setattr(user, field, wanted_fields[field])
        if "email" in edited:
            try:
                with transaction.atomic():
                    user.save(update_fields=[*edited, "updated_at"])
            except IntegrityError:
                raise AccountError(
                    _("A user with this email already exists."), field="email", code="email_taken"
                ) from None
        elif edited:
            user.save(update_fields=[*edited, "updated_at"])
        Membership.objects.filter(pk__in=[m.pk for m in removing]).delete()
        # A request or activation for a group taken away ends with it.
        AccessRequest.objects.filter(
            user=user, group__in=[m.group_id for m in removing], status__in=AccessRequest.OPEN
        ).update(status=AccessRequest.Status.ENDED)
        Membership.objects.bulk_create(
            [Membership(user=user, group=g, ends_at=ends.get(g.pk)) for g in adding]
        )
        for membership in moved:
            membership.ends_at = ends[membership.group_id]
            membership.save(update_fields=["ends_at"])
        if adding or removing or moved:
            access.changed(User.objects.filter(pk=user.pk))
        kept = [m.group.name for m in current.values() if m.group_id in wanted]
        changed = changes(before, _snapshot(user, kept + [g.name for g in adding]))
        ended = _ends_details(ends, adding + [m.group for m in moved])
        if ended:
            changed = {**changed, **ended}
        if before["email"] != user.email:
            forget_other_addresses(user)
        # One event for the action: a block or unblock names every other
        # change it came with; an edit without one is "user.updated".
        if before["status"] != user.status:
            _status_changed(user, by=by, details=changed)
        elif changed:
            details = {**changed, **(because or {})}
            audit(AuditAction.USER_UPDATED, by=by, target=user, details=details)
        user.pending_grants = [
            request
            for group in waiting
            if (
                request := grant_request(
                    user=user,
                    group=group,
                    ends_at=ends.get(group.pk),
                    source=Membership.MANUAL,
                    by=by,
                    writer=writer,
                )
            )
        ]
        user.requested_email = None
        if confirm:
            email_change_request(user=user, new_email=new_email, by=by)
            user.requested_email = new_email
    return user


def _language(code: str) -> str:
    """One of settings.LANGUAGES, or blank (the browser decides)."""
    code = (code or "").strip()
    if code and code not in {c for c, _name in settings.LANGUAGES}:
        raise AccountError(_("Unknown language."), field="language")
    return code


def user_set_language(*, user: User, language: str, by: Actor) -> User:
    """A user's own interface language (My account): no right needed, it
    changes nothing but the words on their screens; recorded like any other
    change of the account (an admin's goes through user_update)."""
    language = _language(language)
    if language != user.language:
        before, user.language = user.language, language
        user.save(update_fields=["language", "updated_at"])
        details = {"language": [before, language]}
        audit(AuditAction.USER_UPDATED, by=by, target=user, details=details)
    return user


def user_set_status(*, user: User, active: bool, by: Actor) -> User:
    """Block (ends every session of the user at once) or unblock."""
    with access_write(by=by, target=user) as writer:
        reload(user)
        details = user_status_apply(writer, user=user, active=active)
        if details is not None:
            action = AuditAction.USER_UNBLOCKED if active else AuditAction.USER_BLOCKED
            audit(action, by=by, target=user, details=details)
    return user


def user_status_apply(writer, *, user: User, active: bool) -> dict | None:
    """Block or unblock inside an open access write (`writer`), by the same
    rules as user_set_status (users:block, rank, not oneself); a blocked
    user's sessions and API tokens end at once. The caller audits (a door
    with its own event, such as SCIM's deactivation, writes one event for
    the whole action): returns the details, or None when nothing changed."""
    status_guard(writer, user=user, active=active)
    if user.is_active == active:
        return None
    user.status = User.Status.ACTIVE if active else User.Status.BLOCKED
    user.save(update_fields=["status", "updated_at"])
    if active:
        return {"status": ["blocked", "active"]}
    ended = user_sessions_end(user)
    extensions.account_disabled(user, reason="blocked", by=writer.by)
    return {"status": ["active", "blocked"], "sessions_ended": ended}


def status_guard(writer, *, user: User, active: bool) -> None:
    """What blocking (`active` False) or unblocking `user` needs: users:block,
    rank, and never oneself blocked. Raises the refusal; the user page asks
    it too (accounts.subject_actions) to offer only what would pass."""
    writer.require("backoffice:users:block", "block or unblock accounts")
    writer.outranks(user)
    if not active:
        writer.not_self(user, "block")


def delete_guard(writer, *, user: User) -> None:
    """What deleting `user` needs: users:delete, rank, not oneself."""
    writer.require("backoffice:users:delete", "delete accounts")
    writer.outranks(user)
    writer.not_self(user, "delete")


def _status_changed(user: User, *, by: Actor, details: dict | None = None) -> None:
    """After a status change: a blocked user's sessions (and API tokens) end
    at once. Its one event carries `details`, the other changes made with it."""
    details = dict(details or {})
    if user.is_active:
        details["status"] = ["blocked", "active"]
        audit(AuditAction.USER_UNBLOCKED, by=by, target=user, details=details)
        return
    ended = user_sessions_end(user)
    extensions.account_disabled(user, reason="blocked", by=by)
    details.update({"status": ["active", "blocked"], "sessions_ended": ended})
    audit(AuditAction.USER_BLOCKED, by=by, target=user, details=details)


def user_delete(*, user: User, by: Actor) -> None:
    """Delete the account; its audit events keep the email they were about."""
    with access_write(by=by, target=user) as writer:
        reload(user)  # deleted meanwhile by someone else: said once, not twice
        delete_guard(writer, user=user)
        snapshot = _snapshot(user)
        user_sessions_end(user)
        extensions.account_disabled(user, reason="deleted", by=by)
        delete_audited(user, by=by, details={"deleted": snapshot})
