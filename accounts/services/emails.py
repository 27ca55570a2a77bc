"""Changing an account's address: asked for by a person, confirmed by the new
address.

The address is the login, and a first SSO login links the provider's
identity to whichever account holds the address it vouches for. So a person
(an admin on the screens or through the API, for any account, their own
included) only *asks* for a new address: `user_update` records one pending
change per account (a new request replaces it), mails a one-time link to
the new address and a notice to the old one. Following the link (a page,
then a POST) applies the change if the link is still good, the address still
free and the person who asked still allowed to; it is audited with how it
was proven. The account's sessions survive; a password link sent to the old
address dies with it (accounts.tokens hashes the address).

Who writes an address directly: the operator (`createuser`, an admin
creating a *new* account: nobody held that address) and a provisioning
client (SCIM: the provider vouches for it). An account that SCIM or single
sign-on manages follows its provider: the screens and the API may not change
its address at all (accounts.extensions.address_manager).
"""

from __future__ import annotations

from dataclasses import replace

from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from accounts import extensions, mail
from accounts.audit import Actor, AuditAction, audit
from accounts.delegation import access_write
from accounts.errors import AccountError
from accounts.inputs import InvalidInput
from accounts.models import EmailChange, User
from accounts.selectors import user_get_by_email
from accounts.services.common import reload
from accounts.tokens import EmailChangeLinks

PROOF = "link mailed to the new address"
CANCELLING = gettext_noop("cancel a change of address")  # "You may not …" (accounts.delegation)


class LinkRefused(AccountError):
    """A confirmation link that cannot be applied; `reason` is one of
    invalid, expired, void, taken, managed, requester."""

    def __init__(self, message: str, *, reason: str):
        super().__init__(message)
        self.reason = reason


def refuse_if_managed(user: User) -> None:
    """An account whose address its provider keeps (SSO-only, provisioned by
    SCIM): the screens and the API leave the address alone."""
    manager = extensions.address_manager(user)
    if manager:
        raise InvalidInput(
            _("The address of this account is managed by %(manager)s; change it there.")
            % {"manager": manager},
            field="email",
        )


def email_change_request(*, user: User, new_email: str, by: Actor) -> EmailChange:
    """Record a person's request for `new_email` (canonical, free) and mail the
    link and the notice. Runs inside the caller's access write, after its
    checks (users:edit, rank): `user_update` is the door."""
    refuse_if_managed(user)
    EmailChange.objects.filter(user=user).delete()  # a new request replaces the old: its link dies
    change = EmailChange.objects.create(
        user=user,
        new_email=new_email,
        old_email=user.email,
        requested_by=by.user,
        requested_by_label=str(by)[:254],
    )
    mail.queue_email_change_link(by=by, change=change)
    mail.queue_template_mail(
        by=by,
        template="account/email/email_change_notice",
        to=user.email,
        context={"user": user, "new_email": new_email, "requested_by": str(by)},
    )
    audit(
        AuditAction.USER_EMAIL_CHANGE_REQUESTED,
        by=by,
        target=user,
        details={"email": [user.email, new_email]},
    )
    return change


def user_email_change_cancel(*, user: User, by: Actor) -> bool:
    """End a pending change of address. The account's owner may always
    (it only keeps their address as it is); anyone else needs users:edit and
    rank over the account. False when nothing was pending."""
    own = by.user is not None and by.user.pk == user.pk
    with access_write(by=by, target=user) as writer:
        reload(user)
        if not own:
            writer.require("backoffice:users:edit", CANCELLING)
            writer.outranks(user)
        change = EmailChange.objects.filter(user=user).first()
        if change is None:
            return False
        change.delete()
        audit(
            AuditAction.USER_EMAIL_CHANGE_CANCELLED,
            by=by,
            target=user,
            details={"email": [change.old_email, change.new_email]},
        )
    return True


def email_change_void(*, user: User, by: Actor, reason: str) -> None:
    """The account changed hands (a password reset by link, an SSO link that
    removed its credentials): the changes of address asked for under its
    old credentials die with them: its own (whose link would move the new
    holder's address to the old holder's mailbox) and those it asked for
    other accounts (which would be applied with the new holder's rights,
    ROLE_MAP's root perhaps). Inside the caller's write."""
    asked = EmailChange.objects.filter(Q(user=user) | Q(requested_by=user)).select_related("user")
    for change in asked:
        change.delete()
        audit(
            AuditAction.USER_EMAIL_CHANGE_CANCELLED,
            by=by,
            target=change.user,
            details={"email": [change.old_email, change.new_email], "reason": reason},
        )


def _void() -> LinkRefused:
    return LinkRefused(
        _(
            "This link is no longer valid: it was used or cancelled, a newer change was asked "
            "for, or the account has changed since."
        ),
        reason="void",
    )


def _expired() -> LinkRefused:
    return LinkRefused(
        _(
            "This link has expired: a new address must be confirmed within 24 hours. "
            "Ask for the change again."
        ),
        reason="expired",
    )


def email_change_for_link(*, token: str) -> EmailChange:
    """The pending change a link confirms, or LinkRefused saying why not."""
    try:
        data = EmailChangeLinks().read(token)
    except signing.SignatureExpired:
        raise _expired() from None
    except signing.BadSignature:
        raise LinkRefused(
            _("This link is not valid. Open the whole link from the email."), reason="invalid"
        ) from None
    change = EmailChange.objects.select_related("user").filter(pk=data["c"]).first()
    if change is None or (change.user_id, change.new_email, change.old_email) != (
        data["u"],
        data["n"],
        data["o"],
    ):
        raise _void()
    if change.user.email != change.old_email or not change.user.is_active:
        raise _void()
    if timezone.now() >= change.expires_at:
        raise _expired()
    return change


def user_email_change_confirm(*, token: str, by: Actor) -> User:
    """Apply the change a link confirms. `by` is whoever followed it (often
    nobody logged in: the link is the proof). The person who asked must
    still be allowed to ask (users:edit, rank), and the address still free."""
    change = email_change_for_link(token=token)
    requester = change.requested_by
    if requester is None:
        raise LinkRefused(
            _(
                "The person who asked for this change no longer has an account: the address "
                "was not changed."
            ),
            reason="requester",
        )
    user, new = change.user, change.new_email
    # An API client's service account asked: capped by its secret's holder now.
    asker = Actor(
        user=requester,
        ip=by.ip,
        user_agent=by.user_agent,
        site=by.site,
        cap_holder=extensions.cap_holder(requester),
    )
    try:
        with access_write(by=asker, target=user) as writer:
            reload(user)
            if not EmailChange.objects.filter(pk=change.pk, old_email=user.email).exists():
                raise _void()  # used, cancelled or replaced meanwhile
            writer.require("backoffice:users:edit", "change names, email or language")
            writer.outranks(user)
            try:
                refuse_if_managed(user)  # linked to a provider since it was asked
            except AccountError as managed:
                raise LinkRefused(str(managed), reason="managed") from None
            holder = user_get_by_email(new)
            if holder is not None and holder.pk != user.pk:
                raise _taken(new)
            old, user.email = user.email, new
            try:
                with transaction.atomic():
                    user.save(update_fields=["email", "updated_at"])
            except IntegrityError:
                raise _taken(new) from None
            forget_other_addresses(user)
            change.delete()
            follower = by if by.user is not None else replace(by, label=f"link to {new}")
            audit(
                AuditAction.USER_EMAIL_CHANGED,
                by=follower,
                target=user,
                details={
                    "email": [old, new],
                    "proven_by": PROOF,
                    "requested_by": change.requested_by_label,
                    "requested_at": change.created_at.isoformat(),
                },
            )
    except LinkRefused:
        raise
    except AccountError as exc:  # the person who asked may no longer
        raise LinkRefused(
            _("The person who asked for this change may no longer make it: %(why)s")
            % {"why": str(exc)},
            reason="requester",
        ) from None
    return user


def _taken(email: str) -> LinkRefused:
    return LinkRefused(
        _("%(email)s already belongs to another account: the address was not changed.")
        % {"email": email},
        reason="taken",
    )


def forget_other_addresses(user: User) -> None:
    """allauth also logs in by the addresses in its EmailAddress table; the
    account's email field is the only login we allow."""
    from allauth.account.models import EmailAddress

    EmailAddress.objects.filter(user=user).exclude(email__iexact=user.email).delete()
