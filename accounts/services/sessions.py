"""Sessions: an account's server-side sessions, ended by its owner or by a
write that must end them (a block, a deletion, a new password)."""

from __future__ import annotations

from accounts.audit import Actor, AuditAction, audit
from accounts.models import User


def user_sessions_end(user: User, *, keep_session_key: str | None = None) -> int:
    """End the user's server-side sessions (all but `keep_session_key`).
    Returns how many were ended."""
    from allauth.usersessions.adapter import get_adapter
    from allauth.usersessions.models import UserSession

    live, stale = [], []
    for session in UserSession.objects.filter(user=user).exclude(session_key=keep_session_key):
        (live if session.exists() else stale).append(session)
    UserSession.objects.filter(pk__in=[s.pk for s in stale]).delete()
    get_adapter().end_sessions(live)
    return len(live)


def user_sessions_end_some(*, user: User, session_keys, by: Actor, reason: str) -> int:
    """End these sessions of the user, where they live (the database and
    the shared cache, so on every app server): an identity provider logged
    the person out there. Returns how many were ended."""
    from allauth.usersessions.adapter import get_adapter
    from allauth.usersessions.models import UserSession

    rows = list(UserSession.objects.filter(user=user, session_key__in=list(session_keys)))
    get_adapter().end_sessions(rows)
    if rows:
        audit(
            AuditAction.SESSION_ENDED,
            by=by,
            target=user,
            details={"reason": reason, "ended": len(rows)},
        )
    return len(rows)


def user_session_end(*, user: User, session_id: int, by: Actor) -> bool:
    """The owner ends one of their own sessions (My sessions); False when it
    is not theirs or gone."""
    from allauth.usersessions.models import UserSession

    row = UserSession.objects.filter(pk=session_id, user=user).first()
    if row is None:
        return False
    row.end()
    audit(AuditAction.SESSION_ENDED, by=by, target=user, details={"ip": row.ip})
    return True


def user_other_sessions_end(*, user: User, keep_session_key: str, by: Actor) -> int:
    """The owner ends every session but this one (My sessions)."""
    ended = user_sessions_end(user, keep_session_key=keep_session_key)
    audit(AuditAction.SESSION_ENDED, by=by, target=user, details={"others": ended})
    return ended
