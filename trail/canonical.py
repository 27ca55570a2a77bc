"""The canonical form of an audit event: the exact bytes a seal vouches for.

One JSON object per event, keys sorted, no spaces, UTF-8, `created_at` in
UTC ISO 8601 with microseconds, `details` as canonical JSON too (PostgreSQL's
jsonb reorders keys; sorting makes the form independent of the database).
FIELDS is version 1 of the form, fixed: a column added to AuditEvent later
is not sealed until the form is versioned (tests/test_trail_seal.py fails
on a new column so the choice is made, not missed).

`actor_id` is not part of it: deleting a user sets it to NULL (SET_NULL),
a legitimate change of a sealed row; `actor_label` keeps the name and is
sealed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

# Every column of accounts.AuditEvent except id (bound by position in the
# seal) and actor_id (see above).
FIELDS = (
    "created_at",
    "actor_label",
    "channel",
    "action",
    "target_type",
    "target_id",
    "target_label",
    "ip",
    "user_agent",
    "outcome",
    "details",
    "request_id",
)
COLUMNS = ("id", *FIELDS)  # what selectors read, in this order


def dumps(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def record(row: tuple) -> dict:
    """A row read as COLUMNS, as the archive keeps it (id included)."""
    values = dict(zip(COLUMNS, row, strict=True))
    values["created_at"] = utc_iso(values["created_at"])
    if isinstance(values["details"], str):  # a backend that hands JSON back as text
        values["details"] = json.loads(values["details"])
    return values


def content(values: dict) -> bytes:
    """What an event's tag covers: every sealed field, without its id."""
    return dumps({name: values[name] for name in FIELDS})


def line(values: dict) -> bytes:
    """One archive line: the event with its id, canonical."""
    return dumps({"id": values["id"], **{name: values[name] for name in FIELDS}})
