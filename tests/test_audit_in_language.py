"""The audit log in the reader's language: the Action filter is a list of
named actions, details are named lines, and the CSV opens right in a German
spreadsheet (";" and a byte order mark) while staying parseable."""

import ast
import csv
import io
import re
from pathlib import Path

import pytest
from django.conf import settings

from accounts.audit import KNOWN_ACTIONS, Actor, AuditAction, audit

pytestmark = pytest.mark.django_db

GERMAN = {"HTTP_ACCEPT_LANGUAGE": "de"}


def _options(html: str) -> list[tuple[str, str, bool]]:
    select = re.search(r'<select name="action"[^>]*>(.*?)</select>', html, re.S).group(1)
    return [
        (value, label.strip(), bool(selected))
        for value, selected, label in re.findall(
            r'<option value="([^"]*)"( selected)?>([^<]*)</option>', select
        )
    ]


def _rows(html: str) -> str:
    return html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]


class TestActionFilter:
    def test_a_list_of_every_action_named_in_german_and_sorted_by_name(self, admin):
        options = _options(admin.get("/audit/", **GERMAN).content.decode())
        assert options[0] == ("", "Alle Aktionen", False)
        named = options[1:]
        assert sorted(v for v, _l, _s in named) == KNOWN_ACTIONS
        labels = [label for _v, label, _s in named]
        assert ("user.blocked", "Benutzer gesperrt", False) in named
        assert labels == sorted(labels, key=lambda s: s.casefold().replace("ä", "a"))

    def test_a_chosen_action_filters_and_stays_chosen(self, admin):
        audit(AuditAction.USER_BLOCKED, target_label="blocked@shop.example")
        audit(AuditAction.USER_CREATED, target_label="added@shop.example")
        response = admin.get("/audit/?action=user.blocked", **GERMAN)
        assert ("user.blocked", "Benutzer gesperrt", True) in _options(response.content.decode())
        rows = _rows(response.content.decode())
        assert "blocked@shop.example" in rows and "added@shop.example" not in rows

    def test_an_old_link_with_a_raw_prefix_still_filters(self, admin):
        audit(AuditAction.MFA_ADDED, target_label="mfa@shop.example")
        audit(AuditAction.USER_CREATED, target_label="added@shop.example")
        html = admin.get("/audit/?action=mfa.").content.decode()
        assert ("mfa.", "mfa.", True) in _options(html)
        rows = _rows(html)
        assert "mfa@shop.example" in rows and "added@shop.example" not in rows


class TestOutcomeAndChannel:
    def _events(self):
        audit(
            AuditAction.LOGIN_FAILED,
            by=Actor(channel="web"),
            target_label="web-failed@x",
            success=False,
        )
        audit(AuditAction.API_TOKEN_ISSUED, by=Actor(channel="api"), target_label="api-ok@x")
        audit(AuditAction.LOGIN_SUCCEEDED, by=Actor(channel="web"), target_label="web-ok@x")

    def test_lists_of_outcomes_and_channels_filter_the_page_and_the_export(self, admin):
        self._events()
        html = admin.get("/audit/?outcome=failure", **GERMAN).content.decode()
        assert '<option value="">Jedes Ergebnis</option>' in html
        rows = _rows(html)
        assert "web-failed@x" in rows and "web-ok@x" not in rows and "api-ok@x" not in rows
        rows = _rows(admin.get("/audit/?channel=api&outcome=success").content.decode())
        assert "api-ok@x" in rows and "web-ok@x" not in rows and "web-failed@x" not in rows
        body = b"".join(admin.get("/audit/export.csv?channel=web").streaming_content).decode()
        assert "web-ok@x" in body and "web-failed@x" in body and "api-ok@x" not in body

    def test_a_value_not_in_the_list_is_an_error_not_everything(self, admin):
        self._events()
        response = admin.get("/audit/?channel=carrier-pigeon")
        assert response.status_code == 200
        html = response.content.decode()
        assert "Channel:" in html and "web-ok@x" not in _rows(html)
        assert admin.get("/audit/export.csv?outcome=maybe").status_code == 400


class TestDetails:
    def _page(self, admin, **headers) -> str:
        by = Actor(channel="web")
        audit(AuditAction.LOGIN_SUCCEEDED, by=by, details={"method": "password"})
        audit(AuditAction.USER_CREATED, by=by, details={"via": "screen", "password": "none"})
        audit(
            AuditAction.USER_BLOCKED,
            by=by,
            details={"status": ["active", "blocked"], "sessions_ended": 1},
        )
        audit(AuditAction.MFA_ADDED, by=by, details={"type": "totp", "reauthentication": False})
        audit(AuditAction.SCIM_CLIENT_CREATED, by=by, details={"ceiling": "operator"})
        audit(AuditAction.LOGIN_FAILED, by=by, details={"flux_capacitor": "1.21 GW"})
        return _rows(admin.get("/audit/", **headers).content.decode())

    def test_german_keys_and_values(self, admin):
        rows = self._page(admin, **GERMAN)
        for line in (
            "Methode: Passwort",
            "Über: Back-Office-Oberfläche",
            "Passwort: keine",
            "Status: aktiv → gesperrt",
            "Beendete Sitzungen: 1",
            "Art: Authenticator-App",
            "Erneute Bestätigung: nein",
            "Obergrenze: Betreiber (keine)",
        ):
            assert line in rows, line
        # An unknown key is shown as stored, never dropped.
        assert "flux capacitor: 1.21 GW" in rows

    def test_english_stays_as_it_reads(self, admin):
        rows = self._page(admin)
        for line in (
            "method: password",
            "status: active → blocked",
            "sessions ended: 1",
            "type: authenticator app",
            "reauthentication: no",
            "flux capacitor: 1.21 GW",
        ):
            assert line in rows, line

    def test_every_detail_key_the_code_writes_has_a_name(self):
        """A new key in a `details=` dict (or details["key"] = …) needs its
        name in backoffice.audit_display.KEYS, or German pages show English."""
        from backoffice.audit_display import KEYS

        written = set()
        for package in ("accounts", "sso", "scim", "api", "trail", "reviews"):
            for path in (Path(settings.BASE_DIR) / package).rglob("*.py"):
                if "migrations" in path.parts:
                    continue
                for node in ast.walk(ast.parse(path.read_text())):
                    written |= _keys_written(node)
        assert written, "the scan found nothing: is the code still there?"
        assert not sorted(written - set(KEYS))


def _keys_written(node) -> set[str]:
    names = ("details", "facts", "changed", "changes")
    found = None
    if isinstance(node, ast.keyword):
        found = node.value if node.arg == "details" else None
    elif isinstance(node, ast.Assign):
        named = any(isinstance(t, ast.Name) and t.id in names for t in node.targets)
        found = node.value if named else None
    elif (
        isinstance(node, ast.Subscript)
        and isinstance(node.ctx, ast.Store)
        and isinstance(node.value, ast.Name)
        and node.value.id in names
        and isinstance(node.slice, ast.Constant)
    ):
        return {node.slice.value}
    if isinstance(found, ast.Dict):
        return {k.value for k in found.keys if isinstance(k, ast.Constant)}
    return set()


class TestExport:
    def _export(self, admin, **headers) -> bytes:
        audit(AuditAction.USER_BLOCKED, target_label="=cmd|' /C calc'!A0", details={"n": 1})
        response = admin.get("/audit/export.csv", **headers)
        assert response.status_code == 200
        return b"".join(response.streaming_content)

    def test_english_commas_and_stable_column_names(self, admin):
        body = self._export(admin)
        assert not body.startswith(b"\xef\xbb\xbf")
        rows = list(csv.reader(io.StringIO(body.decode())))
        header = rows[0]
        assert header[:4] == ["time_utc", "action", "action_label", "outcome"]
        row = dict(zip(header, rows[1], strict=True))
        assert row["action"] == "user.blocked" and row["action_label"] == "User blocked"
        assert row["target"].startswith("'=")

    def test_german_semicolons_a_byte_order_mark_and_german_headers(self, admin):
        body = self._export(admin, **GERMAN)
        assert body.startswith(b"\xef\xbb\xbf")
        rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
        header = rows[0]
        assert header[:4] == ["Zeit (UTC)", "Aktionscode", "Aktion", "Ergebnis"]
        row = dict(zip(header, rows[1], strict=True))
        assert row["Aktionscode"] == "user.blocked" and row["Aktion"] == "Benutzer gesperrt"
        # Still defused: a spreadsheet does not run it.
        assert row["Ziel"].startswith("'=")
        assert len(header) == len(rows[1])
