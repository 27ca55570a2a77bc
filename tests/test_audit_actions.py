"""The audit trail's vocabulary is one enum (accounts.audit.AuditAction): the
audit screen's filter offers exactly what the code writes. `audit()` refuses
anything else; this checks the other direction, by reading the code: every
call names a member, and every member is written somewhere."""

import ast
from pathlib import Path

import pytest

from accounts.audit import AuditAction, audit

ROOT = Path(__file__).resolve().parent.parent
APPS = ("accounts", "backoffice", "sso", "api", "scim", "iam", "trail", "reviews")
WRITERS = {"audit", "token_event", "_mfa_audit"}


def _code():
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" not in path.parts:
                yield path, ast.parse(path.read_text(), str(path))


def test_every_call_names_a_member_and_every_member_is_written():
    written, literal_calls = set(), []
    for path, tree in _code():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "AuditAction"
            ):
                written.add(node.attr)
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in WRITERS:
                first = node.args[0] if node.args else None
                if isinstance(first, ast.Constant):
                    literal_calls.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert literal_calls == []
    assert written == {member.name for member in AuditAction}


@pytest.mark.django_db
def test_an_unknown_action_is_refused():
    with pytest.raises(ValueError):
        audit("user.vanished")
