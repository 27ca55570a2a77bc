"""One audit event as one OCSF event: the security-event stream's words.

A pure function (`event_to_ocsf`): the trail's row in, a dict out, no query
(the actor's and target's names are copies on the row). Every AuditAction
has one line in MAPPING, its OCSF class and activity; tests/test_stream_ocsf.py
checks each against the schema files of VERSION (vendored in tests/ocsf/)
and that no action lacks a line.

The classes (README "Security-event stream (OCSF)" has the whole table):
- Authentication (3002): logins, second-factor steps, logouts and session ends.
- Account Change (3001): accounts, passwords, second factors, memberships and
  privileged access (a membership is the policy our users hold: Attach/Detach
  Policy), identity links.
- API Activity (6003): the API's clients and tokens, SCIM provisioning.
- Entity Management (3004): what fits none of those: groups and roles (the
  access model's entities), the access file applied, the identity provider's
  keys fetched, the maintenance's cleanup.

What leaves: the row's facts, and its details under `unmapped.details`. The
trail holds no secret or raw provider value (accounts.audit's rule, shown
as-is by the audit screen and /api/v1/audit), so the stream ships what a
holder of the audit read right already sees, to a sink the operator chose.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, version

from django.utils import translation

from accounts.audit import AuditAction, action_label

VERSION = "1.8.0"  # the OCSF version; tests/ocsf/ holds its files
PRODUCT_NAME = "Back Office IAM"
VENDOR_NAME = "Back Office IAM"
SERVICE = {"name": PRODUCT_NAME}


@dataclass(frozen=True)
class Kind:
    """An OCSF event class and the activities we use of it."""

    category_uid: int
    category_name: str
    class_uid: int
    class_name: str
    activities: dict[int, str]


OTHER = 99
IAM_CATEGORY = (3, "Identity & Access Management")
AUTHENTICATION = Kind(*IAM_CATEGORY, 3002, "Authentication", {1: "Logon", 2: "Logoff", 99: "Other"})
LOGON, LOGOFF = 1, 2
ACCOUNT_CHANGE = Kind(
    *IAM_CATEGORY,
    3001,
    "Account Change",
    {
        1: "Create",
        2: "Enable",
        3: "Password Change",
        4: "Password Reset",
        5: "Disable",
        6: "Delete",
        7: "Attach Policy",
        8: "Detach Policy",
        10: "MFA Factor Enable",
        11: "MFA Factor Disable",
        99: "Other",
    },
)
CREATE, ENABLE, PASSWORD_CHANGE, PASSWORD_RESET, DISABLE, DELETE = 1, 2, 3, 4, 5, 6
ATTACH_POLICY, DETACH_POLICY, MFA_ENABLE, MFA_DISABLE = 7, 8, 10, 11
ENTITY_MANAGEMENT = Kind(
    *IAM_CATEGORY, 3004, "Entity Management", {1: "Create", 3: "Update", 4: "Delete"}
)
API_ACTIVITY = Kind(
    6,
    "Application Activity",
    6003,
    "API Activity",
    {1: "Create", 3: "Update", 4: "Delete", 99: "Other"},
)
# The CRUD activities of Entity Management and API Activity.
E_CREATE, E_UPDATE, E_DELETE = 1, 3, 4

A = AuditAction
MAPPING: dict[AuditAction, tuple[Kind, int]] = {
    # Logins and sessions.
    A.LOGIN_SUCCEEDED: (AUTHENTICATION, LOGON),
    A.LOGIN_FAILED: (AUTHENTICATION, LOGON),
    A.LOGIN_THROTTLED: (AUTHENTICATION, LOGON),
    A.MFA_USED: (AUTHENTICATION, LOGON),
    A.MFA_FAILED: (AUTHENTICATION, LOGON),
    A.MFA_PASSKEY_LOGIN: (AUTHENTICATION, LOGON),
    A.SSO_FAILED: (AUTHENTICATION, LOGON),
    A.SSO_REAUTHENTICATED: (AUTHENTICATION, LOGON),
    A.LOGOUT: (AUTHENTICATION, LOGOFF),
    A.SESSION_ENDED: (AUTHENTICATION, LOGOFF),
    A.SESSION_EXPIRED: (AUTHENTICATION, LOGOFF),
    A.SSO_BACKCHANNEL_LOGOUT: (AUTHENTICATION, LOGOFF),
    A.SSO_FRONTCHANNEL_LOGOUT: (AUTHENTICATION, LOGOFF),
    A.SSO_LOGOUT_TOKEN_REFUSED: (AUTHENTICATION, LOGOFF),
    # Accounts.
    A.USER_CREATED: (ACCOUNT_CHANGE, CREATE),
    A.USER_INVITED: (ACCOUNT_CHANGE, CREATE),
    A.USER_BLOCKED: (ACCOUNT_CHANGE, DISABLE),
    A.USER_UNBLOCKED: (ACCOUNT_CHANGE, ENABLE),
    A.USER_DELETED: (ACCOUNT_CHANGE, DELETE),
    A.USER_UPDATED: (ACCOUNT_CHANGE, OTHER),
    A.USER_EMAIL_CHANGE_REQUESTED: (ACCOUNT_CHANGE, OTHER),
    A.USER_EMAIL_CHANGE_CANCELLED: (ACCOUNT_CHANGE, OTHER),
    A.USER_EMAIL_CHANGED: (ACCOUNT_CHANGE, OTHER),
    A.PASSWORD_CHANGED: (ACCOUNT_CHANGE, PASSWORD_CHANGE),
    A.PASSWORD_RESET_REQUESTED: (ACCOUNT_CHANGE, PASSWORD_RESET),
    A.PASSWORD_RESET_COMPLETED: (ACCOUNT_CHANGE, PASSWORD_RESET),
    A.PASSWORD_RESET_REFUSED: (ACCOUNT_CHANGE, PASSWORD_RESET),
    A.MFA_ADDED: (ACCOUNT_CHANGE, MFA_ENABLE),
    A.MFA_WEBAUTHN_ADDED: (ACCOUNT_CHANGE, MFA_ENABLE),
    A.MFA_REPLACED: (ACCOUNT_CHANGE, MFA_ENABLE),
    A.MFA_RECOVERY_CODES_REGENERATED: (ACCOUNT_CHANGE, MFA_ENABLE),
    A.MFA_REMOVED: (ACCOUNT_CHANGE, MFA_DISABLE),
    A.MFA_WEBAUTHN_REMOVED: (ACCOUNT_CHANGE, MFA_DISABLE),
    A.MFA_RESET: (ACCOUNT_CHANGE, MFA_DISABLE),
    A.SSO_LINKED: (ACCOUNT_CHANGE, OTHER),
    A.SSO_UNLINKED: (ACCOUNT_CHANGE, OTHER),
    A.SSO_LINK_REFUSED: (ACCOUNT_CHANGE, OTHER),
    # Memberships and privileged access: what a user holds.
    A.MEMBERSHIP_EXPIRED: (ACCOUNT_CHANGE, DETACH_POLICY),
    A.ACCESS_ACTIVATED: (ACCOUNT_CHANGE, ATTACH_POLICY),
    A.ACCESS_APPROVED: (ACCOUNT_CHANGE, ATTACH_POLICY),
    A.ACCESS_ACTIVATION_ENDED: (ACCOUNT_CHANGE, DETACH_POLICY),
    A.ACCESS_ACTIVATION_EXPIRED: (ACCOUNT_CHANGE, DETACH_POLICY),
    A.ACCESS_REQUESTED: (ACCOUNT_CHANGE, OTHER),
    A.ACCESS_DENIED: (ACCOUNT_CHANGE, OTHER),
    A.ACCESS_REQUEST_CANCELLED: (ACCOUNT_CHANGE, OTHER),
    A.ACCESS_REQUEST_EXPIRED: (ACCOUNT_CHANGE, OTHER),
    A.ACCESS_GRANT_REFUSED: (ACCOUNT_CHANGE, ATTACH_POLICY),
    A.ACCESS_LOCKOUT_REFUSED: (ACCOUNT_CHANGE, DETACH_POLICY),
    A.SSO_GROUPS_SYNCED: (ACCOUNT_CHANGE, OTHER),
    A.SSO_GROUPS_SYNC_HELD: (ACCOUNT_CHANGE, OTHER),
    # The access model's entities, and the operator's own acts.
    A.GROUP_CREATED: (ENTITY_MANAGEMENT, E_CREATE),
    A.GROUP_UPDATED: (ENTITY_MANAGEMENT, E_UPDATE),
    A.GROUP_DELETED: (ENTITY_MANAGEMENT, E_DELETE),
    A.ROLE_CREATED: (ENTITY_MANAGEMENT, E_CREATE),
    A.ROLE_UPDATED: (ENTITY_MANAGEMENT, E_UPDATE),
    A.ROLE_DELETED: (ENTITY_MANAGEMENT, E_DELETE),
    A.ACCESS_APPLIED: (ENTITY_MANAGEMENT, E_UPDATE),
    A.SSO_METADATA_REFRESHED: (ENTITY_MANAGEMENT, E_UPDATE),
    A.MAINTENANCE_RAN: (ENTITY_MANAGEMENT, E_DELETE),
    A.AUDIT_ARCHIVED: (ENTITY_MANAGEMENT, E_DELETE),
    # Access reviews (reviews): the review is the entity; a revocation it
    # applies is its own user.updated event (Account Change) as well.
    A.REVIEW_STARTED: (ENTITY_MANAGEMENT, E_CREATE),
    A.REVIEW_DECIDED: (ENTITY_MANAGEMENT, E_UPDATE),
    A.REVIEW_ENDED: (ENTITY_MANAGEMENT, E_UPDATE),
    A.REVIEW_APPLIED: (ENTITY_MANAGEMENT, E_UPDATE),
    # The API.
    A.API_CLIENT_CREATED: (API_ACTIVITY, E_CREATE),
    A.API_CLIENT_UPDATED: (API_ACTIVITY, E_UPDATE),
    A.API_CLIENT_SECRET_ROTATED: (API_ACTIVITY, E_UPDATE),
    A.API_CLIENT_DELETED: (API_ACTIVITY, E_DELETE),
    A.API_TOKEN_ISSUED: (API_ACTIVITY, E_CREATE),
    A.API_TOKEN_REFRESHED: (API_ACTIVITY, E_CREATE),
    A.API_TOKEN_REFUSED: (API_ACTIVITY, E_CREATE),
    A.API_TOKEN_REPLAYED: (API_ACTIVITY, E_CREATE),
    A.API_TOKEN_REVOKED: (API_ACTIVITY, E_DELETE),
    # SCIM provisioning.
    A.SCIM_AUTH_FAILED: (API_ACTIVITY, OTHER),
    A.SCIM_CLIENT_CREATED: (API_ACTIVITY, E_CREATE),
    A.SCIM_CLIENT_REVOKED: (API_ACTIVITY, E_DELETE),
    A.SCIM_USER_CREATED: (API_ACTIVITY, E_CREATE),
    A.SCIM_USER_UPDATED: (API_ACTIVITY, E_UPDATE),
    A.SCIM_USER_DEACTIVATED: (API_ACTIVITY, E_UPDATE),
    A.SCIM_USER_REACTIVATED: (API_ACTIVITY, E_UPDATE),
    A.SCIM_USER_LINKED: (API_ACTIVITY, E_UPDATE),
    A.SCIM_USER_LINK_REFUSED: (API_ACTIVITY, E_UPDATE),
    A.SCIM_USER_DELETED: (API_ACTIVITY, E_DELETE),
    A.SCIM_GROUP_CREATED: (API_ACTIVITY, E_CREATE),
    A.SCIM_GROUP_UPDATED: (API_ACTIVITY, E_UPDATE),
    A.SCIM_GROUPS_SYNCED: (API_ACTIVITY, E_UPDATE),
    A.SCIM_GROUP_SYNC_REFUSED: (API_ACTIVITY, E_UPDATE),
    A.SCIM_GROUP_DELETED: (API_ACTIVITY, E_DELETE),
}

SEVERITIES = {1: "Informational", 2: "Low", 3: "Medium", 4: "High"}
# Success is informational, a refusal low; these say more.
SEVERITY = {
    A.API_TOKEN_REPLAYED: 4,  # a refresh token used twice: stolen, its family revoked
    A.LOGIN_THROTTLED: 3,
    A.SCIM_AUTH_FAILED: 3,
    A.ACCESS_GRANT_REFUSED: 3,
    A.ACCESS_LOCKOUT_REFUSED: 3,
    A.SSO_LOGOUT_TOKEN_REFUSED: 3,
    A.MFA_RESET: 2,
    A.USER_DELETED: 2,
    A.ACCESS_ACTIVATED: 2,
    A.ACCESS_APPROVED: 2,
}
SUCCESS, FAILURE = 1, 2
# A reason code in details, up to its first ":" (what follows may be a provider's words).
REASON_MAX = 64
USER_TYPES = {"user"}


def event_to_ocsf(event) -> dict:
    """The OCSF event of one audit row (an accounts.models.AuditEvent)."""
    action = AuditAction(event.action)
    kind, activity = MAPPING[action]
    failed = event.outcome != "success"
    severity = SEVERITY.get(action, 2 if failed else 1)
    ocsf = {
        "category_uid": kind.category_uid,
        "category_name": kind.category_name,
        "class_uid": kind.class_uid,
        "class_name": kind.class_name,
        "activity_id": activity,
        "activity_name": kind.activities[activity],
        "type_uid": kind.class_uid * 100 + activity,
        "type_name": f"{kind.class_name}: {kind.activities[activity]}",
        "time": int(event.created_at.timestamp() * 1000),
        "severity_id": severity,
        "severity": SEVERITIES[severity],
        "status_id": FAILURE if failed else SUCCESS,
        "status": "Failure" if failed else "Success",
        "message": _english(action),
        "metadata": _metadata(event),
    }
    reason = _reason(event.details)
    if reason:
        ocsf["status_detail"] = reason
    actor = _actor(event)
    if actor:
        ocsf["actor"] = actor
    if event.ip:
        ocsf["src_endpoint"] = {"ip": event.ip}
    if event.user_agent:
        ocsf["http_request"] = {"user_agent": event.user_agent}
    ocsf.update(_class_objects(kind, activity, event, action))
    ocsf["unmapped"] = {"channel": event.channel or "", "details": dict(event.details or {})}
    return ocsf


def _metadata(event) -> dict:
    metadata = {
        "version": VERSION,
        "product": _product(),
        "uid": str(event.pk),
        "event_code": event.action,
        "log_name": "audit",
        "labels": [f"channel:{event.channel or 'none'}"],
    }
    if event.request_id:
        metadata["correlation_uid"] = event.request_id
    return metadata


@cache
def _english(action: AuditAction) -> str:
    """The action's name for the SIEM's reader: in English, whatever the
    language of the request that wrote it."""
    with translation.override("en"):
        return str(action_label(action.value))


@cache
def _product() -> dict:
    try:
        release = version("backoffice-iam")
    except PackageNotFoundError:
        release = ""
    product = {"name": PRODUCT_NAME, "vendor_name": VENDOR_NAME}
    if release:
        product["version"] = release
    return product


def _reason(details) -> str:
    reason = (details or {}).get("reason")
    if not isinstance(reason, str) or not reason:
        return ""
    return reason.split(":", 1)[0][:REASON_MAX]


def _actor(event) -> dict:
    """Who acted: an account (its id and name), else the principal's name
    (a client, the operator, an identity provider)."""
    if event.actor_id is not None:
        return {"user": {"uid": str(event.actor_id), "name": event.actor_label, "type_id": 1}}
    if event.actor_label:
        return {"app_name": event.actor_label}
    return {}


def _target_user(event) -> dict | None:
    if event.target_type not in USER_TYPES:
        return None
    user = {"uid": event.target_id or None, "name": event.target_label or None, "type_id": 1}
    if "@" in (event.target_label or ""):
        user["email_addr"] = event.target_label
    return {k: v for k, v in user.items() if v is not None}


def _user(event) -> dict:
    """The account the event is about: its target, else its actor, else the
    name given (a login for an unknown address names what was typed)."""
    user = _target_user(event)
    if user and ("uid" in user or "name" in user):
        return user
    if event.actor_id is not None:
        return {"uid": str(event.actor_id), "name": event.actor_label, "type_id": 1}
    return {"name": event.target_label or event.actor_label or "unknown"}


def _class_objects(kind: Kind, activity: int, event, action: AuditAction) -> dict:
    if kind is AUTHENTICATION:
        objects = {"user": _user(event), "service": SERVICE}
        if action.startswith("mfa."):
            objects["is_mfa"] = True
        if action == A.SSO_REAUTHENTICATED:
            objects["is_new_logon"] = False
        return objects
    if kind is ACCOUNT_CHANGE:
        return {"user": _user(event)}
    if kind is ENTITY_MANAGEMENT:
        entity = {
            "name": event.target_label or action.value,
            "type": event.target_type or action.value.split(".", 1)[0],
        }
        if event.target_id:
            entity["uid"] = event.target_id
        return {"entity": entity}
    # API Activity: the operation, who called, from where.
    api = {
        "operation": action.value,
        "service": {"name": "SCIM" if action.startswith("scim.") else "OAuth and JSON API"},
    }
    objects = {"api": api, "actor": _actor(event) or {"app_name": "unauthenticated"}}
    objects["src_endpoint"] = {"ip": event.ip} if event.ip else {"svc_name": event.channel or "cli"}
    if event.target_id or event.target_label:
        resource = {"type": event.target_type or None, "uid": event.target_id or None}
        resource["name"] = event.target_label or None
        objects["resources"] = [{k: v for k, v in resource.items() if v is not None}]
    return objects
