"""Writing the audit trail: one call per security-relevant event."""

from __future__ import annotations

import logging

from accounts.models import AuditEvent

logger = logging.getLogger("iam.audit")

# The actions written anywhere in the code, for the audit screen's filter.
KNOWN_ACTIONS = [
    "access.grant_refused",
    "access.lockout_refused",
    "group.created",
    "group.deleted",
    "group.updated",
    "login.failed",
    "login.succeeded",
    "login.throttled",
    "logout",
    "mfa.replaced",
    "password.reset.completed",
    "password.reset.refused",
    "password.reset.requested",
    "role.created",
    "role.deleted",
    "role.updated",
    "session.expired",
    "sso.failed",
    "sso.groups.sync_held",
    "sso.groups.synced",
    "sso.linked",
    "sso.reauthenticated",
    "sso.unlinked",
    "user.blocked",
    "user.created",
    "user.deleted",
    "user.invited",
    "user.unblocked",
    "user.updated",
]

USER_AGENT_MAX = AuditEvent._meta.get_field("user_agent").max_length


def _request_facts(request, ip=None, user_agent="") -> dict:
    if request is None:
        return {"ip": ip or None, "user_agent": user_agent[:USER_AGENT_MAX]}
    return {
        "ip": request.META.get("REMOTE_ADDR") or None,
        "user_agent": request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_MAX],
    }


def audit(
    action: str,
    *,
    request=None,
    actor=None,
    actor_label: str = "",
    target=None,
    target_label: str = "",
    target_type: str = "",
    target_id: str = "",
    success: bool = True,
    details: dict | None = None,
    ip: str | None = None,
    user_agent: str = "",
) -> AuditEvent:
    """Record one event. `actor` defaults to the request's user (an actor
    deleted meanwhile is given as `actor_label` alone); `target`
    is any model instance (its str() is kept as the readable label); for a
    target that no longer exists give its type, id and label instead. Work
    done later for a request (the mail worker) gives that request's `ip` and
    `user_agent` instead of the request."""
    if actor is None and not actor_label and request is not None:
        user = getattr(request, "user", None)
        actor = user if getattr(user, "is_authenticated", False) else None
    event = AuditEvent.objects.create(
        actor=actor,
        actor_label=str(actor) if actor is not None else actor_label,
        action=action,
        target_type=target._meta.model_name if target is not None else target_type,
        target_id=str(target.pk) if target is not None else str(target_id),
        target_label=(str(target) if target is not None else target_label)[:254],
        outcome=AuditEvent.Outcome.SUCCESS if success else AuditEvent.Outcome.FAILURE,
        details=details or {},
        **_request_facts(request, ip, user_agent),
    )
    logger.info(
        "%s outcome=%s actor=%s target=%s ip=%s",
        action,
        event.outcome,
        event.actor_label or "-",
        event.target_label or "-",
        event.ip or "-",
    )
    return event
