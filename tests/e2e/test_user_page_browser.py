"""The user page's tabs in a real browser at 1,280 px, in English and in
German, with long realistic content: nothing scrolls sideways, no table is
clipped, the header's actions fit, and axe finds nothing."""

import pytest

from accounts.audit import Actor, AuditAction, audit
from tests.e2e.axe import Audit
from tests.e2e.checks import no_clipped_table
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LONG_EMAIL = "margarete.schneider-hoffmann@personalverwaltung.example"
TABS = ("", "groups/", "security/", "sessions/", "events/")


def _subject(root):
    from sso.models import Identity

    target = UserFactory(
        email=LONG_EMAIL,
        first_name="Margarete Sophie Charlotte",
        last_name="Schneider-Hoffmann",
        groups=["root"],
    )
    Identity.objects.create(
        user=target,
        provider="entra-personalverwaltung",
        issuer="https://login.microsoftonline.com/00000000-0000-0000-9a4b-1c2d3e4f5a6b/v2.0",
        subject="00000000-0000-0000-9a4b-1c2d3e4f5a6b7c8d9e0f",
        email=LONG_EMAIL,
    )
    by = Actor(user=root, ip="2001:0db8:85a3:0000:0000:8a2e:0370:7334", channel="web")
    audit(
        AuditAction.USER_UPDATED,
        by=by,
        target=target,
        details={
            "email": [LONG_EMAIL, "m.schneider-hoffmann@zentrale.personalverwaltung.example"],
            "groups": [["Buchhaltung"], ["Buchhaltung", "Personalabteilung Nord"]],
        },
    )
    return target


@pytest.mark.parametrize("locale", ["en-US", "de-DE"])
def test_every_tab_fits_at_1280(live_server, browser, locale):
    root = UserFactory(email="root.operator@shop.example", groups=["root"])
    target = _subject(root)
    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_login", target.email)
        page.fill("#id_password", PASSWORD)
        page.click("main button[type=submit]")
        page.wait_for_load_state()
        page.context.clear_cookies()
        page.goto(f"{live_server.url}/login/")
        page.fill("#id_login", root.email)
        page.fill("#id_password", PASSWORD)
        page.click("main button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        checks = Audit(page)
        for tab in TABS:
            checks.visit(f"{live_server.url}/users/{target.pk}/{tab}", f"user {tab} {locale}")
            assert no_clipped_table(page) == [], (tab, locale)
            assert page.locator("nav.tabs a[aria-current=page]").count() == 1
        checks.assert_clean()
    finally:
        context.close()
