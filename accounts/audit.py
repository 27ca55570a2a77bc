"""Writing the audit trail: one call per security-relevant event.

Every action is a member of `AuditAction`, the trail's one vocabulary (the
audit screen's filter offers it; tests/test_audit_actions.py checks that
every call writes a member and that no member is unused). Who acted, through
which door and within what bound, is an `Actor`: what the services need of
a request, and nothing else of it. One action writes one event, naming the
principal (`actor_label`) and the channel.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from enum import StrEnum

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from accounts.models import AuditEvent
from iam import metrics
from iam.logs import log_context, request_id

logger = logging.getLogger("iam.audit")

USER_AGENT_MAX = AuditEvent._meta.get_field("user_agent").max_length
CHANNEL_MAX = AuditEvent._meta.get_field("channel").max_length


class AuditAction(StrEnum):
    # The access model: a file applied as one change (manage.py access apply;
    # each group and role written also has its own event), writes refused by
    # delegation (accounts.delegation).
    ACCESS_APPLIED = "access.applied"
    ACCESS_GRANT_REFUSED = "access.grant_refused"
    ACCESS_LOCKOUT_REFUSED = "access.lockout_refused"
    # Privileged access on demand (accounts.services.privileged): requests
    # for an activation or a four-eyes grant, their decisions and ends.
    ACCESS_ACTIVATED = "access.activated"
    ACCESS_ACTIVATION_ENDED = "access.activation_ended"
    ACCESS_ACTIVATION_EXPIRED = "access.activation_expired"
    ACCESS_APPROVED = "access.approved"
    ACCESS_DENIED = "access.denied"
    ACCESS_REQUEST_CANCELLED = "access.request_cancelled"
    ACCESS_REQUEST_EXPIRED = "access.request_expired"
    ACCESS_REQUESTED = "access.requested"
    # The audit trail itself: sealed batches moved to the archive (trail).
    AUDIT_ARCHIVED = "audit.archived"
    # A time-bound membership reached its end (recorded once, afterwards).
    MEMBERSHIP_EXPIRED = "membership.expired"
    # The API's clients and tokens (api).
    API_CLIENT_CREATED = "api.client.created"
    API_CLIENT_DELETED = "api.client.deleted"
    API_CLIENT_SECRET_ROTATED = "api.client.secret_rotated"
    API_CLIENT_UPDATED = "api.client.updated"
    API_TOKEN_ISSUED = "api.token.issued"
    API_TOKEN_REFRESHED = "api.token.refreshed"
    API_TOKEN_REFUSED = "api.token.refused"
    API_TOKEN_REPLAYED = "api.token.replayed"
    API_TOKEN_REVOKED = "api.token.revoked"
    # Groups and roles.
    GROUP_CREATED = "group.created"
    GROUP_DELETED = "group.deleted"
    GROUP_UPDATED = "group.updated"
    ROLE_CREATED = "role.created"
    ROLE_DELETED = "role.deleted"
    ROLE_UPDATED = "role.updated"
    # Logins and sessions.
    LOGIN_FAILED = "login.failed"
    LOGIN_SUCCEEDED = "login.succeeded"
    LOGIN_THROTTLED = "login.throttled"
    LOGOUT = "logout"
    # The worker's cleanup (maintenance): what it removed.
    MAINTENANCE_RAN = "maintenance.ran"
    SESSION_ENDED = "session.ended"
    SESSION_EXPIRED = "session.expired"
    # Second factors.
    MFA_ADDED = "mfa.added"
    MFA_FAILED = "mfa.failed"
    MFA_RECOVERY_CODES_REGENERATED = "mfa.recovery_codes.regenerated"
    MFA_REMOVED = "mfa.removed"
    MFA_REPLACED = "mfa.replaced"
    MFA_RESET = "mfa.reset"
    MFA_USED = "mfa.used"
    # Security keys and passkeys (WebAuthn): added, removed, a passkey login.
    MFA_PASSKEY_LOGIN = "mfa.passkey.login"
    MFA_WEBAUTHN_ADDED = "mfa.webauthn.added"
    MFA_WEBAUTHN_REMOVED = "mfa.webauthn.removed"
    # Passwords.
    PASSWORD_CHANGED = "password.changed"
    PASSWORD_RESET_COMPLETED = "password.reset.completed"
    PASSWORD_RESET_REFUSED = "password.reset.refused"
    PASSWORD_RESET_REQUESTED = "password.reset.requested"
    # SCIM provisioning (scim): a provisioning client's writes and refusals.
    SCIM_AUTH_FAILED = "scim.auth_failed"
    SCIM_CLIENT_CREATED = "scim.client_created"
    SCIM_CLIENT_REVOKED = "scim.client_revoked"
    SCIM_GROUP_CREATED = "scim.group_created"
    SCIM_GROUP_DELETED = "scim.group_deleted"
    SCIM_GROUP_SYNC_REFUSED = "scim.group_sync_refused"
    SCIM_GROUP_UPDATED = "scim.group_updated"
    SCIM_GROUPS_SYNCED = "scim.groups_synced"
    SCIM_USER_CREATED = "scim.user_created"
    SCIM_USER_DEACTIVATED = "scim.user_deactivated"
    SCIM_USER_DELETED = "scim.user_deleted"
    SCIM_USER_LINKED = "scim.user_linked"
    SCIM_USER_LINK_REFUSED = "scim.user_link_refused"
    SCIM_USER_REACTIVATED = "scim.user_reactivated"
    SCIM_USER_UPDATED = "scim.user_updated"
    # Single sign-on (sso).
    SSO_BACKCHANNEL_LOGOUT = "sso.backchannel_logout"
    SSO_FAILED = "sso.failed"
    SSO_FRONTCHANNEL_LOGOUT = "sso.frontchannel_logout"
    SSO_GROUPS_SYNC_HELD = "sso.groups.sync_held"
    SSO_GROUPS_SYNCED = "sso.groups.synced"
    SSO_LINKED = "sso.linked"
    SSO_LINK_REFUSED = "sso.link_refused"
    SSO_LOGOUT_TOKEN_REFUSED = "sso.logout_token_refused"
    SSO_METADATA_REFRESHED = "sso.metadata_refreshed"
    SSO_REAUTHENTICATED = "sso.reauthenticated"
    SSO_UNLINKED = "sso.unlinked"
    # Access reviews (reviews): started, an item decided, ended, applied.
    REVIEW_APPLIED = "review.applied"
    REVIEW_DECIDED = "review.decided"
    REVIEW_ENDED = "review.ended"
    REVIEW_STARTED = "review.started"
    # Accounts.
    USER_BLOCKED = "user.blocked"
    USER_CREATED = "user.created"
    USER_DELETED = "user.deleted"
    USER_EMAIL_CHANGE_CANCELLED = "user.email_change_cancelled"
    USER_EMAIL_CHANGE_REQUESTED = "user.email_change_requested"
    USER_EMAIL_CHANGED = "user.email_changed"
    USER_INVITED = "user.invited"
    USER_UNBLOCKED = "user.unblocked"
    USER_UPDATED = "user.updated"


KNOWN_ACTIONS = sorted(action.value for action in AuditAction)

# What each stable code means, in the reader's language (the code itself is
# stored, filtered on and exported; only the screens show these).
LABELS = {
    AuditAction.ACCESS_APPLIED: _("Access model applied from a file"),
    AuditAction.ACCESS_GRANT_REFUSED: _("Access beyond one's own refused"),
    AuditAction.ACCESS_LOCKOUT_REFUSED: _("Lock-out refused"),
    AuditAction.ACCESS_ACTIVATED: _("Access activated"),
    AuditAction.ACCESS_ACTIVATION_ENDED: _("Activation ended early"),
    AuditAction.ACCESS_ACTIVATION_EXPIRED: _("Activation expired"),
    AuditAction.ACCESS_APPROVED: _("Access request approved"),
    AuditAction.ACCESS_DENIED: _("Access request denied"),
    AuditAction.ACCESS_REQUEST_CANCELLED: _("Access request withdrawn"),
    AuditAction.ACCESS_REQUEST_EXPIRED: _("Access request expired unanswered"),
    AuditAction.ACCESS_REQUESTED: _("Access requested"),
    AuditAction.AUDIT_ARCHIVED: _("Old audit log entries archived (retention)"),
    AuditAction.MEMBERSHIP_EXPIRED: _("Membership ended"),
    AuditAction.API_CLIENT_CREATED: _("API client added"),
    AuditAction.API_CLIENT_DELETED: _("API client deleted"),
    AuditAction.API_CLIENT_SECRET_ROTATED: _("API client secret replaced"),
    AuditAction.API_CLIENT_UPDATED: _("API client changed"),
    AuditAction.API_TOKEN_ISSUED: _("API token issued"),
    AuditAction.API_TOKEN_REFRESHED: _("API token refreshed"),
    AuditAction.API_TOKEN_REFUSED: _("API token refused"),
    AuditAction.API_TOKEN_REPLAYED: _("API token replayed"),
    AuditAction.API_TOKEN_REVOKED: _("API token revoked"),
    AuditAction.GROUP_CREATED: _("Group added"),
    AuditAction.GROUP_DELETED: _("Group deleted"),
    AuditAction.GROUP_UPDATED: _("Group changed"),
    AuditAction.ROLE_CREATED: _("Role added"),
    AuditAction.ROLE_DELETED: _("Role deleted"),
    AuditAction.ROLE_UPDATED: _("Role changed"),
    AuditAction.LOGIN_FAILED: _("Login failed"),
    AuditAction.LOGIN_SUCCEEDED: _("Logged in"),
    AuditAction.LOGIN_THROTTLED: _("Login throttled"),
    AuditAction.LOGOUT: _("Logged out"),
    AuditAction.MAINTENANCE_RAN: _("Expired records removed (maintenance)"),
    AuditAction.SESSION_ENDED: _("Session ended"),
    AuditAction.SESSION_EXPIRED: _("Session expired"),
    AuditAction.MFA_ADDED: _("Second factor added"),
    AuditAction.MFA_FAILED: _("Wrong second-factor code"),
    AuditAction.MFA_RECOVERY_CODES_REGENERATED: _("Recovery codes renewed"),
    AuditAction.MFA_REMOVED: _("Second factor removed"),
    AuditAction.MFA_REPLACED: _("Authenticator app replaced"),
    AuditAction.MFA_RESET: _("Two-factor authentication reset"),
    AuditAction.MFA_USED: _("Second factor used"),
    AuditAction.MFA_PASSKEY_LOGIN: _("Logged in with a passkey"),
    AuditAction.MFA_WEBAUTHN_ADDED: _("Security key or passkey added"),
    AuditAction.MFA_WEBAUTHN_REMOVED: _("Security key or passkey removed"),
    AuditAction.PASSWORD_CHANGED: _("Password changed"),
    AuditAction.PASSWORD_RESET_COMPLETED: _("Password reset completed"),
    AuditAction.PASSWORD_RESET_REFUSED: _("Password reset refused"),
    AuditAction.PASSWORD_RESET_REQUESTED: _("Password reset requested"),
    AuditAction.SCIM_AUTH_FAILED: _("Provisioning (SCIM) token refused"),
    AuditAction.SCIM_CLIENT_CREATED: _("Provisioning (SCIM) client added"),
    AuditAction.SCIM_CLIENT_REVOKED: _("Provisioning (SCIM) client revoked"),
    AuditAction.SCIM_GROUP_CREATED: _("Provisioning (SCIM) group added"),
    AuditAction.SCIM_GROUP_DELETED: _("Provisioning (SCIM) group deleted"),
    AuditAction.SCIM_GROUP_SYNC_REFUSED: _("Group sync from provisioning (SCIM) refused"),
    AuditAction.SCIM_GROUP_UPDATED: _("Provisioning (SCIM) group changed"),
    AuditAction.SCIM_GROUPS_SYNCED: _("Groups synced from provisioning (SCIM)"),
    AuditAction.SCIM_USER_CREATED: _("User added by provisioning (SCIM)"),
    AuditAction.SCIM_USER_DEACTIVATED: _("User deactivated by provisioning (SCIM)"),
    AuditAction.SCIM_USER_DELETED: _("User deleted by provisioning (SCIM)"),
    AuditAction.SCIM_USER_LINKED: _("User linked by provisioning (SCIM)"),
    AuditAction.SCIM_USER_LINK_REFUSED: _("Provisioning (SCIM) refused to link a user"),
    AuditAction.SCIM_USER_REACTIVATED: _("User reactivated by provisioning (SCIM)"),
    AuditAction.SCIM_USER_UPDATED: _("User changed by provisioning (SCIM)"),
    AuditAction.SSO_BACKCHANNEL_LOGOUT: _("Logged out by the identity provider (back-channel)"),
    AuditAction.SSO_FAILED: _("Single sign-on failed"),
    AuditAction.SSO_FRONTCHANNEL_LOGOUT: _("Logged out by the identity provider (front-channel)"),
    AuditAction.SSO_GROUPS_SYNC_HELD: _("Group sync from single sign-on held back"),
    AuditAction.SSO_GROUPS_SYNCED: _("Groups synced from single sign-on"),
    AuditAction.SSO_LINKED: _("Single sign-on identity linked"),
    AuditAction.SSO_LINK_REFUSED: _("Single sign-on identity not linked"),
    AuditAction.SSO_LOGOUT_TOKEN_REFUSED: _("Logout token of the identity provider refused"),
    AuditAction.SSO_METADATA_REFRESHED: _("Identity provider's discovery and keys fetched again"),
    AuditAction.SSO_REAUTHENTICATED: _("Confirmed by single sign-on"),
    AuditAction.SSO_UNLINKED: _("Single sign-on identity unlinked"),
    AuditAction.REVIEW_APPLIED: _("Access review applied"),
    AuditAction.REVIEW_DECIDED: _("Access review item decided"),
    AuditAction.REVIEW_ENDED: _("Access review ended"),
    AuditAction.REVIEW_STARTED: _("Access review started"),
    AuditAction.USER_BLOCKED: _("User blocked"),
    AuditAction.USER_CREATED: _("User added"),
    AuditAction.USER_DELETED: _("User deleted"),
    AuditAction.USER_EMAIL_CHANGE_CANCELLED: _("Change of address cancelled"),
    AuditAction.USER_EMAIL_CHANGE_REQUESTED: _("Change of address asked for (link mailed)"),
    AuditAction.USER_EMAIL_CHANGED: _("Address changed (confirmed by the new address)"),
    AuditAction.USER_INVITED: _("User invited"),
    AuditAction.USER_UNBLOCKED: _("User unblocked"),
    AuditAction.USER_UPDATED: _("User changed"),
}


def action_label(code: str) -> str:
    """The readable name of a stored action code (an unknown one: itself)."""
    try:
        return LABELS[AuditAction(code)]
    except ValueError:
        return code


# The door a request came through, from its path (Actor.of); an actor made
# outside a request names its own ("cli" for the operator's commands).
CHANNELS = {"web", "api", "scim", "sso", "cli", "worker"}
_PATH_CHANNELS = (("/scim/", "scim"), ("/api/", "api"), ("/oauth/", "api"), ("/sso/", "sso"))


def channel_of(request) -> str:
    path = getattr(request, "path", "") or ""
    return next((name for prefix, name in _PATH_CHANNELS if path.startswith(prefix)), "web")


@dataclass(frozen=True)
class Actor:
    """Who does something, through which door, and within what bound.

    Every principal is "account ∩ cap" (accounts.delegation.access_write
    reads both fresh, under the access lock):
    - `user`: the account acting (a person, or a service account an API
      client acts as); None when no account acts.
    - `operator`: the trusted operator (the command line, identity-provider
      configuration), whose account is every permission, as root's is.
    - a machine principal without an account (a SCIM client, an identity
      provider) has `label` and a bound; it holds the operator's trust
      within that bound, and nothing without one.
    - `cap`: a frozenset of registered resources the actor cannot exceed
      (an API token's scopes, its secret holder's permissions), None for
      no cap. `ceiling` (group names) is a cap read from the database at
      each write: what a member of exactly those groups holds (a SCIM
      client's --max-group). `cap_holder` is a cap read the same way: the
      permissions of that user id (an API client's secret holder) while
      active, nothing otherwise (0: the holder was deleted).
    - `channel`: the door ("web", "api", "scim", "sso", "cli"), recorded
      with every audit event; `label` names a principal that is not a user,
      or the client acting for `user` ("client <name>").
    `ip`, `user_agent` and `site` (scheme and host, for links in mails) are
    the request's."""

    user: object = None
    operator: bool = False
    ip: str | None = None
    user_agent: str = ""
    site: str = ""
    label: str = ""
    ceiling: tuple[str, ...] = ()
    cap: frozenset[str] | None = None
    cap_holder: int | None = None
    channel: str = ""
    # The API client a token belongs to: named in the actor label and in
    # every audit row's details.
    client: str = ""

    @classmethod
    def of(
        cls, request, *, user=None, operator: bool = False, label: str = "", channel: str = ""
    ) -> Actor:
        """From a request: its logged-in user unless `user` is given; the
        channel from its path unless `channel` is given."""
        if user is None and not operator and not label:
            current = getattr(request, "user", None)
            user = current if getattr(current, "is_authenticated", False) else None
        return cls(
            user=user,
            operator=operator,
            ip=request.META.get("REMOTE_ADDR") or None,
            # PostgreSQL refuses NUL in text: a header carrying one must not
            # turn an audited request into a 500.
            user_agent=request.META.get("HTTP_USER_AGENT", "").replace("\x00", "")[:USER_AGENT_MAX],
            site=f"{request.scheme}://{request.get_host()}",
            label=label,
            channel=channel or channel_of(request),
        )

    @classmethod
    def system(cls, *, request=None, label: str = "", channel: str = "") -> Actor:
        """The operator: the command line, or configuration acting during a
        request (an SSO login applying the ROLE_MAP)."""
        if request is not None:
            return cls.of(request, operator=True, label=label, channel=channel)
        return cls(operator=True, label=label, channel=channel or "cli")

    @classmethod
    def bounded(cls, *, request=None, label: str, ceiling, channel: str = "") -> Actor:
        """A machine principal holding only what its ceiling groups give (a
        SCIM client): the operator's trust, capped by the ceiling."""
        if request is not None:
            base = cls.of(request, label=label, channel=channel)
        else:
            base = cls(label=label, channel=channel)
        return replace(base, ceiling=tuple(sorted(ceiling)))

    def capped(self, resources) -> Actor:
        """The same principal, held within `resources` as well (an API
        token: its account ∩ its scopes ∩ its secret holder's permissions).
        Caps only narrow: capping twice keeps what both allow."""
        resources = frozenset(resources)
        return replace(self, cap=resources if self.cap is None else self.cap & resources)

    @property
    def bounded_by_cap(self) -> bool:
        return self.cap is not None or bool(self.ceiling) or self.cap_holder is not None

    @property
    def principal(self) -> str:
        """The principal's name, as the audit trail keeps it."""
        return str(self)

    def key(self) -> tuple:
        """What decides this actor's permissions (one Writer per key in a
        write: accounts.delegation)."""
        return (
            getattr(self.user, "pk", None),
            self.operator,
            self.ceiling,
            self.cap,
            self.cap_holder,
        )

    def as_user(self, user) -> Actor:
        """The same request's facts, with `user` acting (an SSO login's own events)."""
        return replace(
            self, user=user, operator=False, label="", ceiling=(), cap=None, cap_holder=None
        )

    def gone(self) -> Actor:
        """The same actor, whose account was deleted meanwhile: named, not linked."""
        return replace(self, user=None, label=str(self))

    def __str__(self) -> str:
        if self.user is not None:
            # An account acting through a client: both are named.
            if self.client:
                return f"{self.user} via client {self.client}"
            return f"{self.user} via {self.label}" if self.label else str(self.user)
        return self.label or ("operator" if self.operator else "")


def audit(
    action: AuditAction,
    *,
    by: Actor | None = None,
    target=None,
    target_label: str = "",
    target_type: str = "",
    target_id: str = "",
    success: bool = True,
    details: dict | None = None,
) -> AuditEvent:
    """Record one event. `target` is any model instance (its str() is kept as
    the readable label); for a target that no longer exists give its type, id
    and label instead."""
    action = AuditAction(action)  # an unknown action is a bug: ValueError
    by = by or Actor()
    if by.client:
        details = {"client": by.client, **(details or {})}
    event = AuditEvent.objects.create(
        actor=by.user,
        actor_label=str(by)[:254],
        channel=(by.channel or "")[:CHANNEL_MAX],
        action=action.value,
        target_type=target._meta.model_name if target is not None else target_type,
        target_id=str(target.pk) if target is not None else str(target_id),
        target_label=(str(target) if target is not None else target_label)[:254],
        outcome=AuditEvent.Outcome.SUCCESS if success else AuditEvent.Outcome.FAILURE,
        details=details or {},
        ip=by.ip,
        user_agent=(by.user_agent or "")[:USER_AGENT_MAX],
        request_id=request_id(),
    )
    for listener in _listeners:
        listener.written(event)  # inside the transaction: no query (listen())
    # Logged once the event is committed: a rolled-back write is no event.
    context = log_context()
    transaction.on_commit(lambda: _log(event, context))
    metrics.audited(event)  # counted once committed (README "Metrics")
    return event


def _log(event: AuditEvent, context: dict) -> None:
    logger.info(
        "%s outcome=%s actor=%s channel=%s target=%s ip=%s",
        event.action,
        event.outcome,
        event.actor_label or "-",
        event.channel or "-",
        event.target_label or "-",
        event.ip or "-",
        extra=context,
    )
    for listener in _listeners:
        try:
            listener.committed(event, context)
        except Exception:
            # The write is committed: a listener's bug must not answer it with a 500.
            logger.exception("audit listener %r failed on event %s", listener, event.pk)


# Who else hears of each event, as Keycloak's event listeners do: the
# security-event stream (stream.apps) subscribes at start-up, so this layer
# names none of them. `written(event)` runs inside the write's transaction
# and must not query (the request path stays one INSERT); `committed(event,
# context)` runs once it commits, with the request id and actor of its log line.
_listeners: list = []


def listen(listener) -> None:
    """Subscribe `listener` to every audit event (once)."""
    if listener not in _listeners:
        _listeners.append(listener)
