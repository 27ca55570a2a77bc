"""The audit log screen: filters, paging, CSV export, read-only."""

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.audit import Actor, AuditAction, audit
from accounts.models import AuditEvent
from tests.conftest import login
from tests.factories import PASSWORD, GroupFactory, RoleFactory, RuleFactory, UserFactory

pytestmark = pytest.mark.django_db


def _rows(response):
    html = response.content.decode()
    return html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]


def test_newest_first_and_filters(admin, root_user):
    audit(AuditAction.USER_CREATED, by=Actor(user=root_user), target_label="old@shop.example")
    old = AuditEvent.objects.latest("id")
    AuditEvent.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=10))
    audit(AuditAction.USER_DELETED, target_label="gone@shop.example")
    body = _rows(admin.get("/audit/"))
    assert body.index("gone@shop.example") < body.index("old@shop.example")
    assert "old@shop.example" not in _rows(admin.get("/audit/?action=user.deleted"))
    assert "gone@shop.example" not in _rows(admin.get("/audit/?actor=root@"))
    assert "gone@shop.example" in _rows(admin.get("/audit/?target=gone"))
    since = (timezone.now() - timedelta(days=2)).date().isoformat()
    body = _rows(admin.get(f"/audit/?since={since}"))
    assert "gone@shop.example" in body and "old@shop.example" not in body
    until = (timezone.now() - timedelta(days=5)).date().isoformat()
    body = _rows(admin.get(f"/audit/?until={until}"))
    assert "old@shop.example" in body and "gone@shop.example" not in body


@pytest.mark.parametrize(
    "query", ["?since=yesterday", "?until=2026-13-45", "?page=999", "?actor=" + "a" * 400]
)
def test_bad_filters_are_not_500(admin, query):
    assert admin.get("/audit/" + query).status_code == 200


def test_csv_export_follows_the_filter_and_defuses_formulas(admin):
    audit(AuditAction.LOGIN_FAILED, target_label='=HYPERLINK("http://evil")', success=False)
    audit(AuditAction.USER_CREATED, target_label="kept@shop.example")
    response = admin.get("/audit/export.csv?action=login.failed")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["time_utc", "action", "action_label", "outcome"]
    assert [r[1] for r in rows[1:]] == ["login.failed"]
    assert rows[1][rows[0].index("target")].startswith("'=HYPERLINK")


def test_read_only_for_everyone(admin):
    audit(AuditAction.USER_CREATED, target_label="x@shop.example")
    event = AuditEvent.objects.latest("id")
    for method in ("post", "put", "delete"):
        getattr(admin, method)("/audit/")
    assert AuditEvent.objects.filter(pk=event.pk).exists()
    assert '<form method="post"' not in _rows(admin.get("/audit/"))


def test_view_without_export_right(client):
    role = RoleFactory()
    RuleFactory(role=role, pattern="backoffice:audit:view")
    viewer = UserFactory(groups=[GroupFactory(roles=[role])])
    login(client, viewer.email, PASSWORD)
    assert "Export CSV" not in client.get("/audit/").content.decode()
    assert client.get("/audit/export.csv").status_code == 403
