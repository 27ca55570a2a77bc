"""Writes about accounts: each function is one action, atomic, audited."""

from __future__ import annotations

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from accounts.audit import audit
from accounts.models import Group, Membership, User, normalize_email
from accounts.selectors import user_get_by_email


class AccountError(Exception):
    """A request that cannot be carried out; the message is shown to people."""


def _clean_name(value: str, label: str) -> str:
    value = (value or "").strip()
    if not value:
        raise AccountError(f"{label} is required.")
    if len(value) > 150:
        raise AccountError(f"{label} must be at most 150 characters.")
    return value


def user_create(
    *,
    email: str,
    first_name: str,
    last_name: str,
    password: str | None = None,
    groups: list[Group] | tuple = (),
    active: bool = True,
    actor: User | None = None,
    request=None,
    via: str = "screen",
) -> User:
    """Create an account. No password means an unusable one (the person sets
    it through a reset link, or logs in by SSO). Raises AccountError with a
    message fit for a form or the command line; nothing is written then."""
    email = normalize_email(email)
    try:
        validate_email(email)
    except ValidationError:
        raise AccountError(f"'{email}' is not a valid email address.") from None
    user = User(
        email=email,
        first_name=_clean_name(first_name, "First name"),
        last_name=_clean_name(last_name, "Last name"),
        status=User.Status.ACTIVE if active else User.Status.BLOCKED,
    )
    if user_get_by_email(email) is not None:
        raise AccountError(f"A user with email {email} already exists.")
    if password is not None:
        try:
            password_validation.validate_password(password, user=user)
        except ValidationError as exc:
            raise AccountError(" ".join(exc.messages)) from None
        user.set_password(password)
    else:
        user.set_unusable_password()
    try:
        with transaction.atomic():
            user.save()
            Membership.objects.bulk_create(
                [Membership(user=user, group=g, source=Membership.MANUAL) for g in groups]
            )
            audit(
                "user.created",
                request=request,
                actor=actor,
                target=user,
                details={
                    "via": via,
                    "status": user.status,
                    "groups": [g.name for g in groups],
                    "password": "set" if password is not None else "none",
                },
            )
    except IntegrityError:
        # Lost a race with another creation of the same address.
        raise AccountError(f"A user with email {email} already exists.") from None
    return user


def user_sessions_end(user: User, *, keep_session_key: str | None = None) -> int:
    """End the user's server-side sessions (all but `keep_session_key`).
    Returns how many were ended."""
    from allauth.usersessions.adapter import get_adapter
    from allauth.usersessions.models import UserSession

    sessions = [
        s for s in UserSession.objects.filter(user=user) if s.session_key != keep_session_key
    ]
    get_adapter().end_sessions(sessions)
    return len(sessions)


def password_reset_completed(*, request, user: User) -> None:
    """After a reset by link every other session of the user ends: whoever
    knew the old password is out."""
    keep = request.session.session_key if request.user == user else None
    ended = user_sessions_end(user, keep_session_key=keep)
    audit(
        "password.reset.completed",
        request=request,
        actor=user,
        target=user,
        details={"sessions_ended": ended},
    )
