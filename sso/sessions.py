"""Which Back Office sessions an identity provider's session is in.

An SSO login keeps the provider's session id (`sid`), the subject and the ID
token in the session (accounts.login's SESSION_EXTRA; the ID token is the
id_token_hint of a later logout at the provider) and lists the session here,
so a provider's logout can name it and it can be ended on every app server
(sessions live in the database, read through the shared cache).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from accounts.audit import Actor
from accounts.login import SESSION_EXTRA, SESSION_METHOD
from accounts.models import User
from accounts.services import user_sessions_end_some
from sso.models import SsoSession

SID_MAX = SsoSession._meta.get_field("sid").max_length


def login_extra(provider, claims: dict, id_token: str) -> dict:
    """What an SSO login keeps in its session (accounts.login.complete_login)."""
    sid = claims.get("sid")
    return {
        "provider": provider.id,
        "sid": sid if isinstance(sid, str) and len(sid) <= SID_MAX else "",
        "sub": claims["sub"],
        "id_token": id_token,
        **provider.session_extra(claims),
    }


def session_extra(request) -> dict:
    """This session's SSO login, or {} when it came in another way."""
    method = request.session.get(SESSION_METHOD) or ""
    extra = request.session.get(SESSION_EXTRA) or {}
    if not method.startswith("sso:") or extra.get("provider") != method[4:]:
        return {}
    return extra


def record(sender=None, request=None, user=None, **kwargs) -> None:
    """At the end of every login (allauth's user_logged_in, after
    accounts.login wrote the session contract): list an SSO session."""
    if request is None or user is None:
        return
    extra = session_extra(request)
    if not extra or not request.session.session_key:
        return
    horizon = timezone.now() - timedelta(seconds=settings.SESSION_COOKIE_AGE)
    SsoSession.objects.filter(user=user, created__lt=horizon).delete()
    SsoSession.objects.update_or_create(
        session_key=request.session.session_key,
        defaults={
            "provider": extra["provider"],
            "sid": extra.get("sid") or "",
            "sub": extra.get("sub") or "",
            "user": user,
        },
    )


def renewed(request, provider, claims: dict, id_token: str) -> None:
    """A re-authentication at the provider this session came in through:
    the provider may have started a session of its own with a new sid, and
    the newer ID token is the better id_token_hint."""
    extra = session_extra(request)
    if extra.get("provider") != provider.id:
        return
    extra = login_extra(provider, claims, id_token)
    request.session[SESSION_EXTRA] = extra
    SsoSession.objects.filter(session_key=request.session.session_key).update(
        sid=extra["sid"], sub=extra["sub"]
    )


def end(provider, *, sid: str = "", sub: str = "", by: Actor, reason: str) -> int:
    """End the sessions of the provider's session `sid` (and of `sub`, when
    both are named), else every session of its subject `sub`. Returns how
    many were ended."""
    rows = SsoSession.objects.filter(provider=provider.id)
    if sid:
        rows = rows.filter(sid=sid)
        if sub:
            rows = rows.filter(sub=sub)
    elif sub:
        rows = rows.filter(sub=sub)
    else:
        return 0
    keys_by_user: dict[int, list[str]] = {}
    for user_id, key in rows.values_list("user_id", "session_key"):
        keys_by_user.setdefault(user_id, []).append(key)
    ended = 0
    for user in User.objects.filter(pk__in=keys_by_user):
        ended += user_sessions_end_some(
            user=user, session_keys=keys_by_user[user.pk], by=by, reason=reason
        )
    rows.delete()
    return ended
