"""Accounts: create, edit, block, delete, and end their sessions.

Every write that can change who may do what runs in
`accounts.delegation.access_write` (the delegation rules live there); an
`Actor.system()` is the operator (the command line, SSO configuration),
trusted like root.
"""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from accounts import access, extensions
from accounts.audit import Actor, AuditAction, audit
from accounts.delegation import access_write, group_scopes
from accounts.errors import AccountError
from accounts.inputs import clean_name
from accounts.models import Group, Membership, User
from accounts.services.common import (
    about,
    changes,
    delete_audited,
    reload,
    still_there,
    unique_email,
    validate_password,
)
from accounts.services.passwords import mail_password_link
from accounts.services.sessions import user_sessions_end


def _snapshot(user: User) -> dict:
    return {
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "status": user.status,
        "language": user.language,
        "groups": sorted(user.groups.values_list("name", flat=True)) if user.pk else [],
    }


GROUP_DOINGS = {
    "give": gettext_noop("give group %(name)s"),
    "take away": gettext_noop("take away group %(name)s"),
}


def _groups_within(writer, groups, *, doing: str) -> None:
    """Grant bound on groups given or taken away: each one's scope."""
    scopes = group_scopes([g.pk for g in groups])
    for group in sorted(groups, key=lambda g: g.name):
        what = _(GROUP_DOINGS[doing]) % {"name": group.name}
        writer.within(scopes.get(group.pk, frozenset()), what)


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
) -> User:
    """Create an account. No password means an unusable one (the person sets
    it through a link, or logs in by SSO; `invite` mails that link, in the
    same write, so an account is never left without the invitation asked
    for). An admin may put it only in groups whose permissions they hold,
    and create it blocked only with users:block."""
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
            _groups_within(writer, groups, doing="give")
            user.save()
            Membership.objects.bulk_create(
                [Membership(user=user, group=g, source=Membership.MANUAL) for g in groups]
            )
            audit(
                AuditAction.USER_CREATED,
                by=by,
                target=user,
                details={
                    "via": via,
                    "status": user.status,
                    "groups": sorted(g.name for g in groups),
                    "password": "set" if password is not None else "none",
                },
            )
            if invite:
                if not user.is_active:
                    raise AccountError(_("A blocked account cannot be sent an invitation."))
                mail_password_link(user=user, invitation=True, by=by)
    except IntegrityError:
        # Lost a race with another creation of the same address.
        raise AccountError(_("A user with this email already exists."), field="email") from None
    return user


def user_update(
    *,
    user: User,
    email: str,
    first_name: str,
    last_name: str,
    groups: list[Group] | None,
    active: bool,
    by: Actor,
    language: str | None = None,
) -> User:
    """Edit names, email, groups, status and language (groups and language
    None: unchanged, read inside the write) in one go. Each kind of change
    needs its own right (status: users:block; the rest: users:edit), the
    account must not hold more than the actor, and every group given or
    taken away must lie within the actor's permissions."""
    new_email = unique_email(email, exclude_pk=user.pk)
    first_name = about("first_name", clean_name, first_name, "First name")
    last_name = about("last_name", clean_name, last_name, "Last name")
    wanted = {g.pk: g for g in groups} if groups is not None else None
    status = User.Status.ACTIVE if active else User.Status.BLOCKED
    language = _language(language) if language is not None else None
    with access_write(by=by, target=user) as writer:
        reload(user)
        before = _snapshot(user)
        if language is None:
            language = user.language
        current = {m.group_id: m for m in user.memberships.select_related("group")}
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
        if adding or removing:
            writer.require("backoffice:users:edit", "change groups")
            still_there(Group, adding)
            _groups_within(writer, adding, doing="give")
            _groups_within(writer, [m.group for m in removing], doing="take away")
        if status != user.status:
            writer.require("backoffice:users:block", "block or unblock accounts")
            if status == User.Status.BLOCKED:
                writer.not_self(user, "block")
        user.email, user.first_name, user.last_name = new_email, first_name, last_name
        user.status, user.language = status, language
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:
            raise AccountError(_("A user with this email already exists."), field="email") from None
        Membership.objects.filter(pk__in=[m.pk for m in removing]).delete()
        Membership.objects.bulk_create([Membership(user=user, group=g) for g in adding])
        if adding or removing:
            access.changed(User.objects.filter(pk=user.pk))
        changed = changes(before, _snapshot(user))
        if before["email"] != new_email:
            _forget_other_addresses(user)
        if changed:
            audit(AuditAction.USER_UPDATED, by=by, target=user, details=changed)
        if before["status"] != user.status:
            _status_changed(user, by=by)
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


def _forget_other_addresses(user: User) -> None:
    """allauth also logs in by the addresses in its EmailAddress table; the
    account's email field is the only login we allow."""
    from allauth.account.models import EmailAddress

    EmailAddress.objects.filter(user=user).exclude(email__iexact=user.email).delete()


def user_set_status(*, user: User, active: bool, by: Actor) -> User:
    """Block (ends every session of the user at once) or unblock."""
    with access_write(by=by, target=user) as writer:
        reload(user)
        writer.require("backoffice:users:block", "block or unblock accounts")
        writer.outranks(user)
        if user.is_active == active:
            return user
        if not active:
            writer.not_self(user, "block")
        user.status = User.Status.ACTIVE if active else User.Status.BLOCKED
        user.save(update_fields=["status", "updated_at"])
        _status_changed(user, by=by)
    return user


def _status_changed(user: User, *, by: Actor) -> None:
    """After a status change: a blocked user's sessions (and API tokens) end at once."""
    if user.is_active:
        details = {"status": ["blocked", "active"]}
        audit(AuditAction.USER_UNBLOCKED, by=by, target=user, details=details)
        return
    ended = user_sessions_end(user)
    extensions.account_disabled(user, reason="blocked", by=by)
    details = {"status": ["active", "blocked"], "sessions_ended": ended}
    audit(AuditAction.USER_BLOCKED, by=by, target=user, details=details)


def user_delete(*, user: User, by: Actor) -> None:
    """Delete the account; its audit events keep the email they were about."""
    with access_write(by=by, target=user) as writer:
        reload(user)  # deleted meanwhile by someone else: said once, not twice
        writer.require("backoffice:users:delete", "delete accounts")
        writer.outranks(user)
        writer.not_self(user, "delete")
        snapshot = _snapshot(user)
        user_sessions_end(user)
        extensions.account_disabled(user, reason="deleted", by=by)
        delete_audited(user, by=by, details={"deleted": snapshot})
