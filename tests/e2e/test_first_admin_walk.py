"""Issue 21's walk: a first-time admin (as `manage.py demoadmin` makes one)
logs in, sets up an authenticator app and a security key, creates a user, a
group and a role, gives the role to the group and the group to the user,
opens the user's pages, blocks the user, reads the audit log and exports it;
in English and German, at 1,280 and 1,920 px. Every page visited goes
through the four checkers of tests/e2e/checks.py (no clipped table, the
product's layout, no English on a German page, axe): any finding fails."""

import io
import re

import pytest
from django.core.management import call_command

from accounts.models import User
from tests.e2e import first_admin as walk
from tests.e2e.checks import Findings

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CSV_HEADER = {
    "en": [
        "time_utc",
        "action",
        "action_label",
        "outcome",
        "actor",
        "target_type",
        "target_id",
        "target",
        "ip",
        "user_agent",
        "details",
        "channel",
    ],
    # German spreadsheets split on ";" and read the headers in German.
    "de": ["Zeit (UTC)", "Aktionscode", "Aktion"],
}


def _demo_admin(port: str) -> tuple[str, str]:
    """`manage.py demoadmin --port`, as `make run` does: the address it prints
    and the password it prints once."""
    out = io.StringIO()
    call_command("demoadmin", port=int(port), stdout=out)
    text = out.getvalue()
    url = re.search(r"Log in at (\S+) with", text).group(1)
    return url, re.search(r"password: +(\S+)", text).group(1)


@pytest.mark.parametrize("width", [1280, 1920])
@pytest.mark.parametrize("language", ["en", "de"])
def test_first_admin_walk(live_server, browser, settings, language, width):
    settings.IAM_MFA_REQUIRED_GROUPS = ["root"]
    # Passkeys need a secure context and a domain: the live server by the name localhost.
    base = live_server.url
    assert base.startswith("http://localhost:")
    printed, password = _demo_admin(base.rsplit(":", 1)[1])
    User.objects.filter(email=walk.ADMIN_EMAIL).update(language=language)
    context = browser.new_context(
        viewport={"width": width, "height": 900}, locale="de-DE" if language == "de" else "en-US"
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    walk.virtual_key(page)
    seen = Findings(page, german=language == "de")
    # WebAuthn refuses an IP address as the relying party: the printed address
    # must be one where keys work.
    assert printed.startswith("http://localhost:"), printed
    try:
        page.goto(f"{base}/login/")
        seen.check("login")
        walk.log_in(page, base, walk.ADMIN_EMAIL, password)
        page.wait_for_url(f"{base}/2fa/totp/activate/")
        seen.check("app set-up")
        walk.set_up_app(page, base)
        seen.check("recovery codes")
        page.goto(f"{base}/2fa/webauthn/add/")
        seen.check("key add")
        walk.add_key(page, base)
        page.goto(f"{base}/2fa/")
        seen.check("2fa")
        page.goto(f"{base}/2fa/webauthn/")
        assert "Work laptop" in page.locator("main").inner_text()
        seen.check("keys")

        page.goto(f"{base}/users/add/")
        seen.check("user add")
        ada = walk.create_user(page, base, "ada.lovelace@shop.example", "Ada", "Lovelace")
        seen.check("user added")
        page.goto(f"{base}/groups/add/")
        seen.check("group add")
        group = walk.create_group(page, base, "customer-support", "First-line support")
        role = walk.create_role(
            page,
            base,
            "support-agent",
            "Reads accounts, resets passwords",
            ["allow backoffice:users:view", "allow backoffice:users:reset-password"],
        )
        seen.check("role editor")
        walk.give_role_to_group(page, base, role, group)
        seen.check("group edit")
        walk.give_group_to_user(page, base, group, ada)
        assert list(ada.groups.values_list("name", flat=True)) == ["customer-support"]
        assert list(group.roles.values_list("name", flat=True)) == ["support-agent"]
        tabs = walk.user_tabs(page, base, ada)
        assert len(tabs) == 5, tabs  # details, groups, security, sessions, events
        for url in tabs:
            page.goto(url)
            seen.check("user page")

        walk.block(page, base, ada)
        seen.check("blocked")
        ada.refresh_from_db()
        assert ada.status == ada.Status.BLOCKED

        page.goto(f"{base}/audit/")
        seen.check("audit")
        walk.audit_filtered(page, base, "user.blocked")
        seen.check("audit filtered")
        assert "ada.lovelace@shop.example" in page.locator("main table").inner_text()
        rows = walk.export_csv(page, delimiter=";" if language == "de" else ",")
        assert rows[0][: len(CSV_HEADER[language])] == CSV_HEADER[language]
        assert [r[1] for r in rows[1:]] == ["user.blocked"]
    finally:
        context.close()

    assert not seen.by_checker, seen.report()
