"""An audit event's details as lines a person reads, and as JSON for the CSV.

A change is stored as {field: [before, after]} (accounts.services.common.
changes; block and unblock store the status the same way): each becomes
"field: before → after". Anything else becomes "key: value"."""

import json

from django.utils.translation import gettext as _

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


def _text(value) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _label(key: str) -> str:
    return key.replace("_", " ")


def detail_lines(action: str, details) -> list[str]:
    if not details:
        return []
    if not isinstance(details, dict):
        return [_text(details)]
    changes = action in CHANGE_ACTIONS
    lines = []
    for key, value in details.items():
        if changes and isinstance(value, list | tuple) and len(value) == 2:
            lines.append(f"{_label(key)}: {_text(value[0])} → {_text(value[1])}")
        else:
            lines.append(f"{_label(key)}: {_text(value)}")
    return lines


def details_json(details) -> str:
    """The CSV's details column: JSON a spreadsheet or a script can read."""
    if details in (None, "", {}):
        return ""
    return json.dumps(details, ensure_ascii=False, sort_keys=True, default=str)
