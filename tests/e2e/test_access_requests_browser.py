"""Privileged access on demand in a real browser: an eligible member with an
authenticator app asks to activate root (which needs approval), a second
admin approves in another browser context, and the first person then sees
Users. In English and German; axe, layout and table fit checked on each
page of the journey."""

import pytest

from accounts.models import Group
from tests.e2e.checks import Findings
from tests.factories import PASSWORD, UserFactory
from tests.support.mfa import totp
from tests.support.people import admin_with

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _log_in(page, base, email, secret=None):
    page.goto(f"{base}/login/")
    page.fill("#id_login", email)
    page.fill("#id_password", PASSWORD)
    page.click("main button:has-text('Log in')")
    if secret:
        page.wait_for_url(f"{base}/2fa/authenticate/")
        page.fill("input[name=code]", totp(secret, step=-1))
        page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/")


@pytest.mark.parametrize("language", ["en", "de"])
def test_eligible_member_activates_root_with_a_second_admins_approval(
    live_server, browser, settings, language
):
    settings.IAM_MFA_REQUIRED_GROUPS = []
    base = live_server.url
    root = Group.objects.get(name="root")
    root.eligible_only, root.activation_approval, root.max_activation_hours = True, True, 2
    root.save()
    # The approver holds everything through a standing group of their own
    # (every member of root is eligible-only now).
    approver = admin_with("*:*:*", name="owners", email="approver@shop.example")
    approver.language = language
    approver.save()
    ada = UserFactory(email="ada@shop.example", groups=[], language=language)
    from accounts.models import Membership

    Membership.objects.create(user=ada, group=root)
    german = language == "de"

    first = browser.new_context(viewport={"width": 1280, "height": 900})
    second = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = first.new_page()
        page.set_default_timeout(15_000)
        found = Findings(page, german)
        _log_in(page, base, ada.email)
        # An authenticator app first (a fresh second factor is required).
        page.goto(f"{base}/2fa/totp/activate/")
        secret = page.locator("#authenticator_secret").text_content()
        page.fill("input[name=code]", totp(secret, step=1))
        page.click("main button[type=submit]")
        page.wait_for_url(f"{base}/2fa/recovery-codes/")
        page.click("header button[type=submit]")  # log out
        page.wait_for_url(f"{base}/login/")
        _log_in(page, base, ada.email, secret)
        assert page.locator("header a[href='/users/']").count() == 0

        page.click("header a[href='/access/request/']")
        found.check("request")
        page.select_option("#id_group", label="root")
        page.fill("#id_justification", "Incident 42")
        page.fill("#id_hours", "1")
        page.click("main button[type=submit]")
        page.wait_for_url(f"{base}/access/mine/")
        found.check("mine")

        other = second.new_page()
        other.set_default_timeout(15_000)
        found_other = Findings(other, german)
        _log_in(other, base, "approver@shop.example")
        other.click("header a[href='/access/approvals/']")
        found_other.check("approvals")
        other.fill("main input[name=note]", "ok")
        other.click("main form.decision button.btn-primary")
        other.wait_for_url(f"{base}/access/approvals/")
        found_other.check("approvals, after")

        page.goto(f"{base}/")
        page.click("header a[href='/users/']")
        page.wait_for_url(f"{base}/users/")
        page.goto(f"{base}/access/mine/")
        assert "approver@shop.example" in page.locator("main").inner_text()
        found.check("mine, approved")
        assert found.report() == "" and found_other.report() == "", (
            found.report() + "\n" + found_other.report()
        )
    finally:
        first.close()
        second.close()
