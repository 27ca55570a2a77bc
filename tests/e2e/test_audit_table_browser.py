"""The audit log's table fits its column in a real browser: at 1,280 and at
1,920 px, in English and in German, with long realistic rows, every column
(IP and details included) shows without a horizontal scroll, and axe finds
nothing."""

import pytest

from accounts.audit import Actor, AuditAction, audit
from iam.logs import current_request_id
from tests.e2e.axe import Audit
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

IPV6 = "2001:0db8:85a3:0000:0000:8a2e:0370:7334"
LONG_EMAIL = "margarete.schneider-hoffmann@personalverwaltung.example"


def _long_rows(root):
    """The widest rows the product writes: changes with long names, an SSO
    link, an API client acting for someone, a refused SCIM token; each with
    the longest request id a proxy may send (64 characters)."""
    token = current_request_id.set("nginx-" + "7f3a9c1e" * 7 + "zz")
    try:
        _write_long_rows(root)
    finally:
        current_request_id.reset(token)


def _write_long_rows(root):
    by = Actor(user=root, ip=IPV6, channel="web")
    target = UserFactory(email=LONG_EMAIL, first_name="Margarete", last_name="Schneider")
    audit(
        AuditAction.USER_UPDATED,
        by=by,
        target=target,
        details={
            "first_name": ["Margarete", "Margarete Sophie Charlotte"],
            "email": [LONG_EMAIL, "m.schneider-hoffmann@zentrale.personalverwaltung.example"],
            "groups": [
                ["Buchhaltung"],
                ["Buchhaltung", "Personalabteilung Nord", "Zugriffsverwaltung"],
            ],
        },
    )
    audit(
        AuditAction.USER_BLOCKED,
        by=by,
        target=target,
        details={"status": ["active", "blocked"], "sessions_ended": 3},
    )
    audit(
        AuditAction.SSO_LINKED,
        by=Actor(user=target, ip=IPV6, channel="sso"),
        target=target,
        details={
            "provider": "entra-personalverwaltung",
            "subject": "00000000-0000-0000-9a4b-1c2d3e4f5a6b7c8d9e0f",
            "proof": "no local credentials",
            "email_vouched_by": "entra-personalverwaltung",
        },
    )
    audit(
        AuditAction.API_TOKEN_ISSUED,
        by=Actor(user=root, ip=IPV6, channel="api", client="Personalabteilung-Synchronisation"),
        target=target,
        details={"client_id": "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", "scope": "users:read"},
    )
    audit(
        AuditAction.LOGIN_SUCCEEDED,
        by=Actor(user=target, ip=IPV6, channel="web"),
        target=target,
        details={"method": "password"},
    )
    audit(
        AuditAction.MFA_ADDED,
        by=Actor(user=target, ip="203.0.113.250", channel="web"),
        target=target,
        details={"type": "totp", "reauthentication": False},
    )


def _log_in(page, base, email):
    page.goto(f"{base}/login/")
    page.fill("#id_login", email)
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/")


WIDTHS = """() => {
  const wrap = document.querySelector('.table-wrap');
  return {scroll: wrap.scrollWidth, client: wrap.clientWidth,
          table: document.querySelector('.table-wrap table').getBoundingClientRect().width,
          page: document.documentElement.scrollWidth, view: window.innerWidth};
}"""


@pytest.mark.parametrize("locale", ["en-US", "de-DE"])
def test_the_whole_table_shows_at_1280_and_1920(live_server, browser, locale):
    root = UserFactory(email="root.operator@shop.example", groups=["root"])
    _long_rows(root)
    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        _log_in(page, live_server.url, root.email)
        checks = Audit(page)
        for width in (1280, 1920):
            page.set_viewport_size({"width": width, "height": 900})
            checks.visit(f"{live_server.url}/audit/", f"audit {locale} {width}")
            size = page.evaluate(WIDTHS)
            print(locale, width, size)
            assert size["scroll"] <= size["client"], (locale, width, size)
            assert size["page"] <= size["view"], (locale, width, size)
            # No blank rows: each row is as tall as its content, not more.
            tallest = page.evaluate(
                "() => Math.max(...[...document.querySelectorAll('.table-wrap tbody tr')]"
                ".map(r => r.getBoundingClientRect().height))"
            )
            assert tallest < 260, (locale, width, tallest)
        checks.assert_clean()
        if locale == "de-DE":
            html = page.content()
            assert "Methode: Passwort" in html
            assert "Status: aktiv → gesperrt" in html
    finally:
        context.close()
