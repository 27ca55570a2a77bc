"""An audit event's details as lines a person reads, and as JSON for the CSV.

A change is stored as {field: [before, after]} (accounts.services.common.
changes; block and unblock store the status the same way): each becomes
"field: before → after". Anything else becomes "key: value". Known keys
and values are named in the reader's language (one place: here); an
unknown key or value is shown as stored, never dropped."""

import json

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from accounts.audit import AuditAction

# The actions whose details are {field: [before, after]}.
CHANGE_ACTIONS = {
    AuditAction.API_CLIENT_UPDATED,
    AuditAction.GROUP_UPDATED,
    AuditAction.ROLE_UPDATED,
    AuditAction.USER_BLOCKED,
    AuditAction.USER_UNBLOCKED,
    AuditAction.USER_UPDATED,
}
# Actions where only some keys are [before, after] (the others are facts).
CHANGE_KEYS = {
    AuditAction.USER_EMAIL_CHANGE_REQUESTED: {"email"},
    AuditAction.USER_EMAIL_CHANGE_CANCELLED: {"email"},
    AuditAction.USER_EMAIL_CHANGED: {"email"},
    AuditAction.SCIM_USER_UPDATED: {"external_id"},
    AuditAction.SCIM_GROUP_UPDATED: {"changed"},
}

# Every key the code writes (grep `details=` in accounts, sso, scim, api),
# and the fields a change names: each a whole line, "key: value", so a
# language orders and punctuates it as it reads.
KEYS = {
    "activation_approval": gettext_lazy("activation needs approval: %(value)s"),
    "eligible_only": gettext_lazy("eligible only: %(value)s"),
    "ended_at": gettext_lazy("ended at: %(value)s"),
    "ends": gettext_lazy("membership ends: %(value)s"),
    "ends_at": gettext_lazy("membership ends at: %(value)s"),
    "grant_approval": gettext_lazy("grants need a second administrator: %(value)s"),
    "group": gettext_lazy("group: %(value)s"),
    "hours": gettext_lazy("hours: %(value)s"),
    "justification": gettext_lazy("justification: %(value)s"),
    "kind": gettext_lazy("kind: %(value)s"),
    "max_activation_hours": gettext_lazy("longest activation (hours): %(value)s"),
    "note": gettext_lazy("note: %(value)s"),
    "request": gettext_lazy("request: %(value)s"),
    "ticket": gettext_lazy("ticket: %(value)s"),
    "until": gettext_lazy("until: %(value)s"),
    "events": gettext_lazy("events: %(value)s"),
    "seals": gettext_lazy("seals: %(value)s"),
    "archived_before": gettext_lazy("archived before: %(value)s"),
    "access_tokens": gettext_lazy("access tokens: %(value)s"),
    "added": gettext_lazy("added: %(value)s"),
    "binding": gettext_lazy("binding: %(value)s"),
    "by": gettext_lazy("by: %(value)s"),
    "by_sid": gettext_lazy("by session id: %(value)s"),
    "ceiling": gettext_lazy("ceiling: %(value)s"),
    "changed": gettext_lazy("changed: %(value)s"),
    "client": gettext_lazy("client: %(value)s"),
    "client_id": gettext_lazy("client ID: %(value)s"),
    "credentials": gettext_lazy("local credentials: %(value)s"),
    "deleted": gettext_lazy("deleted: %(value)s"),
    "description": gettext_lazy("description: %(value)s"),
    "displayName": gettext_lazy("display name: %(value)s"),
    "email": gettext_lazy("email: %(value)s"),
    "email_vouched_by": gettext_lazy("email vouched for by: %(value)s"),
    "endpoint": gettext_lazy("endpoint: %(value)s"),
    "ended": gettext_lazy("sessions ended: %(value)s"),
    "error": gettext_lazy("error: %(value)s"),
    "externalId": gettext_lazy("external ID: %(value)s"),
    "external_id": gettext_lazy("external ID: %(value)s"),
    "family_revoked": gettext_lazy("token family revoked: %(value)s"),
    "file": gettext_lazy("file: %(value)s"),
    "first_name": gettext_lazy("first name: %(value)s"),
    "grant": gettext_lazy("grant: %(value)s"),
    "group_map": gettext_lazy("group map: %(value)s"),
    "groups": gettext_lazy("groups: %(value)s"),
    "groups_from": gettext_lazy("groups from: %(value)s"),
    "ip": gettext_lazy("IP: %(value)s"),
    "keys": gettext_lazy("keys: %(value)s"),
    "language": gettext_lazy("language: %(value)s"),
    "last_name": gettext_lazy("last name: %(value)s"),
    "linked": gettext_lazy("linked: %(value)s"),
    "matched": gettext_lazy("matched by: %(value)s"),
    "members": gettext_lazy("members: %(value)s"),
    "method": gettext_lazy("method: %(value)s"),
    "name": gettext_lazy("name: %(value)s"),
    "others": gettext_lazy("other sessions ended: %(value)s"),
    "password": gettext_lazy("password: %(value)s"),
    "path": gettext_lazy("path: %(value)s"),
    "proof": gettext_lazy("proof: %(value)s"),
    "proven_by": gettext_lazy("proven by: %(value)s"),
    "provider": gettext_lazy("identity provider: %(value)s"),
    "provider_said": gettext_lazy("identity provider said: %(value)s"),
    "reason": gettext_lazy("reason: %(value)s"),
    "reauthentication": gettext_lazy("reauthentication: %(value)s"),
    "redirect_uris": gettext_lazy("redirect URIs: %(value)s"),
    "refused": gettext_lazy("refused: %(value)s"),
    "removed": gettext_lazy("removed: %(value)s"),
    "requested_at": gettext_lazy("requested at: %(value)s"),
    "requested_by": gettext_lazy("requested by: %(value)s"),
    "resources": gettext_lazy("resources: %(value)s"),
    "roles": gettext_lazy("roles: %(value)s"),
    "rules": gettext_lazy("rules: %(value)s"),
    "scope": gettext_lazy("scope: %(value)s"),
    "secret_holder": gettext_lazy("secret holder: %(value)s"),
    "service_account": gettext_lazy("service account: %(value)s"),
    "sessions_ended": gettext_lazy("sessions ended: %(value)s"),
    "status": gettext_lazy("status: %(value)s"),
    "subject": gettext_lazy("subject: %(value)s"),
    "target": gettext_lazy("target: %(value)s"),
    "tokens_revoked": gettext_lazy("tokens revoked: %(value)s"),
    "type": gettext_lazy("type: %(value)s"),
    "via": gettext_lazy("via: %(value)s"),
    "why": gettext_lazy("why: %(value)s"),
    # Access reviews (reviews.services).
    "decided": gettext_lazy("items decided: %(value)s"),
    "decision": gettext_lazy("decision: %(value)s"),
    "default": gettext_lazy("unanswered items: %(value)s"),
    "items": gettext_lazy("items: %(value)s"),
    "kept": gettext_lazy("kept: %(value)s"),
    "not_applied": gettext_lazy("not applied: %(value)s"),
    "previous": gettext_lazy("previous review: %(value)s"),
    "recurrence": gettext_lazy("recurrence: %(value)s"),
    "review": gettext_lazy("access review: %(value)s"),
    "review_decision": gettext_lazy("review decision: %(value)s"),
    "review_item": gettext_lazy("review item: %(value)s"),
    "reviewers": gettext_lazy("reviewers: %(value)s"),
    "revoked": gettext_lazy("revoked: %(value)s"),
    "skipped": gettext_lazy("groups left out: %(value)s"),
    "stopped": gettext_lazy("stopped: %(value)s"),
}

# Stored values that are words of the product (codes), named; any other
# value (a name, an address, a number) is shown as stored.
_KINDS = {
    "password": gettext_lazy("password"),
    "totp": gettext_lazy("authenticator app"),
    "recovery_codes": gettext_lazy("recovery codes"),
    "webauthn": gettext_lazy("security key or passkey"),
}
VALUES = {
    "method": {
        **_KINDS,
        "passkey": gettext_lazy("passkey login"),
        "api_password": gettext_lazy("password (API)"),
    },
    "type": _KINDS,
    "removed": _KINDS,
    "credentials": _KINDS,
    "via": {
        "screen": gettext_lazy("Back Office screens"),
        "api": gettext_lazy("API"),
        "cli": gettext_lazy("command line"),
        "demoadmin": gettext_lazy("command line (demo)"),
        "scim": gettext_lazy("provisioning (SCIM)"),
    },
    "status": {"active": gettext_lazy("active"), "blocked": gettext_lazy("blocked")},
    "password": {"set": pgettext_lazy("password", "set"), "none": gettext_lazy("none")},
    "by": {"admin": gettext_lazy("an administrator")},
    "ceiling": {"operator": gettext_lazy("operator (none)")},
    "why": {"invalid": gettext_lazy("invalid token"), "missing": gettext_lazy("no token")},
    "reason": {
        "blocked": gettext_lazy("account blocked"),
        "account_blocked": gettext_lazy("account blocked"),
        "sso_only": gettext_lazy("single sign-on only"),
        "passkey not accepted": gettext_lazy("passkey not accepted"),
        "expired": gettext_lazy("past its expiry"),
        "revoked": gettext_lazy("revoked earlier"),
        "deleted": gettext_lazy("since deleted"),
        "invalid": gettext_lazy("not valid"),
        "last_manager": gettext_lazy("would remove the last manager"),
        "throttled": gettext_lazy("too many attempts"),
        "no_account": gettext_lazy("no such account"),
        "mfa": gettext_lazy("second factor required"),
        "rank": gettext_lazy("higher rank"),
        "right": gettext_lazy("permission missing"),
        "replay": gettext_lazy("token reused"),
        "code_reused": gettext_lazy("code reused"),
        "secret_rotated": gettext_lazy("secret replaced"),
        "client_request": gettext_lazy("asked for by the client"),
    },
}
# Values of the form "sso:<provider>" (a login's method, an account's origin).
_SSO_PREFIX = "sso:"


def _text(value, key: str = "") -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, list | tuple):
        return ", ".join(_text(v, key) for v in value)
    if isinstance(value, dict):
        return ", ".join(line(k, _text(v, k)) for k, v in value.items())
    if isinstance(value, str):
        known = VALUES.get(key, {}).get(value)
        if known is not None:
            return str(known)
        if value.startswith(_SSO_PREFIX) and key in ("method", "via"):
            return _("single sign-on (%(provider)s)") % {"provider": value[len(_SSO_PREFIX) :]}
    return str(value)


def line(key: str, text: str) -> str:
    """ "key: value" in the reader's language; an unknown key as it is stored."""
    known = KEYS.get(key)
    if known is None:
        return f"{str(key).replace('_', ' ')}: {text}"
    return str(known) % {"value": text}


def _change(value, key: str) -> str:
    if isinstance(value, dict):
        return ", ".join(line(k, _change(v, k)) for k, v in value.items())
    if isinstance(value, list | tuple) and len(value) == 2:
        return f"{_text(value[0], key)} → {_text(value[1], key)}"
    return _text(value, key)


def detail_lines(action: str, details) -> list[str]:
    """One line a person reads per detail, in the reader's language."""
    if not details:
        return []
    if not isinstance(details, dict):
        return [_text(details)]
    every = action in CHANGE_ACTIONS
    some = CHANGE_KEYS.get(action, set())
    lines = []
    for key, value in details.items():
        if (every and isinstance(value, list | tuple) and len(value) == 2) or key in some:
            lines.append(line(key, _change(value, key)))
        else:
            lines.append(line(key, _text(value, key)))
    return lines


def details_json(details) -> str:
    """The CSV's details column: JSON a spreadsheet or a script can read."""
    if details in (None, "", {}):
        return ""
    return json.dumps(details, ensure_ascii=False, sort_keys=True, default=str)
