"""WCAG 2.1 A/AA on every page, measured by axe-core in the real browser.

Each journey visits its pages (with errors showing where a form can show
them) and collects axe's violations of the wcag2a, wcag2aa, wcag21a and
wcag21aa rules; the test fails listing every one of them, page by page."""

import re

import pytest
from django.core import mail
from django.core.management import call_command

from accounts.models import Group, Role, User
from tests.e2e.axe import Audit
from tests.factories import PASSWORD, GroupFactory, RoleFactory, RuleFactory, UserFactory
from tests.support.mfa import totp

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _log_in(page, base, email, password=PASSWORD):
    page.goto(f"{base}/login/")
    page.fill("#id_login", email)
    page.fill("#id_password", password)
    page.click("main button:has-text('Log in')")


def test_anonymous_pages(live_server, page):
    base = live_server.url
    UserFactory(email="ada@shop.example", groups=["root"])
    audit = Audit(page)
    audit.visit(f"{base}/login/")
    _log_in(page, base, "ada@shop.example", "not the password")
    page.wait_for_selector(".alert")
    audit.check("login with a wrong password")
    page.fill("#id_login", "")
    page.fill("#id_password", "")
    page.click("main button:has-text('Log in')")
    page.wait_for_selector(".field-error")
    audit.check("login with empty fields")

    audit.visit(f"{base}/password/reset/")
    page.fill("input[name=email]", "not an address")
    page.click("main button[type=submit]")
    audit.check("reset request with a bad address")
    page.fill("input[name=email]", "ada@shop.example")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/password/reset/done/")
    audit.check("reset requested")

    link = re.search(r"https?://[^/\s]+(/password/reset/key/\S+/)", mail.outbox[-1].body).group(1)
    page.goto(base + link)
    audit.check("reset key page")
    page.fill("input[name=password1]", "short")
    page.fill("input[name=password2]", "other")
    page.click("main button[type=submit]")
    audit.check("reset key page with errors")
    page.fill("input[name=password1]", "a brand new passphrase 2026")
    page.fill("input[name=password2]", "a brand new passphrase 2026")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/password/reset/key/done/")
    audit.check("reset done")
    audit.visit(f"{base}/password/reset/key/0-bad-link/", "reset key page, bad link")

    audit.visit(f"{base}/no-such-page/", "404", status=404)
    for _ in range(6):  # 5 failures per address in 5 minutes, then 429
        _log_in(page, base, "ada@shop.example", "still not it")
    assert page.locator("h1").inner_text()
    audit.check("429")
    audit.assert_clean()


def test_admin_pages(live_server, page):
    base = live_server.url
    root = UserFactory(email="root@shop.example", first_name="Grace", groups=["root"])
    viewers = RoleFactory(name="user-viewer")
    RuleFactory(role=viewers, pattern="backoffice:users:view")
    support = GroupFactory(name="support", roles=[viewers])
    other = UserFactory(email="vera@shop.example", groups=[support])
    call_command(
        "apiclient",
        "create",
        "--name",
        "shop",
        "--grant",
        "client_credentials",
        "--user",
        "root@shop.example",
        stdout=open("/dev/null", "w"),  # noqa: SIM115
    )
    from oauth2_provider.models import get_application_model

    client = get_application_model().objects.get(name="shop")

    audit = Audit(page)
    _log_in(page, base, root.email)
    page.wait_for_url(f"{base}/")
    audit.check("dashboard")
    audit.visit(f"{base}/users/")
    filtered = f"?q=vera&status=active&group={support.pk}&sort=-email"
    audit.visit(f"{base}/users/{filtered}", "users filtered")
    audit.visit(f"{base}/users/?q=one+two+three+four+five+six", "users: a refused search")
    audit.visit(f"{base}/users/add/")
    page.click("main button:has-text('Add user')")
    audit.check("add user with errors")
    audit.visit(f"{base}/users/{other.pk}/", "edit user")
    page.fill("#id_email", "not an address")
    page.click("main button:has-text('Save')")
    audit.check("edit user with errors")
    for tab in ("groups", "security", "sessions", "events"):
        audit.visit(f"{base}/users/{other.pk}/{tab}/", f"user page: {tab}")
    audit.visit(f"{base}/users/{other.pk}/block/", "block: confirm")
    audit.visit(f"{base}/users/{other.pk}/delete/", "delete user: confirm")
    audit.visit(f"{base}/groups/")
    audit.visit(f"{base}/groups/add/")
    audit.visit(f"{base}/groups/{Group.objects.get(name='root').pk}/", "root group")
    audit.visit(f"{base}/groups/{support.pk}/", "group support")
    audit.visit(f"{base}/roles/")
    audit.visit(f"{base}/roles/add/")
    page.click("summary:has-text('rules as text')")
    page.fill("textarea", "allow backoffice:usres:view")
    page.click("main button[type=submit]")
    audit.check("add role with errors")
    audit.visit(f"{base}/roles/{Role.objects.get(name='user-viewer').pk}/", "role")
    audit.visit(f"{base}/audit/")
    audit.visit(f"{base}/audit/?since=yesterday", "audit with a bad filter")
    audit.visit(f"{base}/account/")
    audit.visit(f"{base}/account/sessions/")
    audit.visit(f"{base}/password/change/")
    page.fill("input[name=oldpassword]", "wrong")
    page.click("main button[type=submit]")
    audit.check("password change with errors")
    audit.visit(f"{base}/api-clients/")
    audit.visit(f"{base}/api-clients/add/")
    audit.visit(f"{base}/api-clients/{client.pk}/", "api client")
    audit.visit(f"{base}/users/{client.account.pk}/", "service account details")
    audit.visit(f"{base}/users/{root.pk}/security/", "security tab with API clients")
    audit.visit(f"{base}/reauthenticate/")
    audit.visit(f"{base}/2fa/totp/activate/", "MFA set-up (voluntary)")
    secret = page.locator("#authenticator_secret").text_content()
    page.fill("input[name=code]", "000000")
    page.click("main button[type=submit]")
    audit.check("MFA set-up with a wrong code")
    page.fill("input[name=code]", totp(secret, step=1))
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/2fa/recovery-codes/")
    audit.check("recovery codes")
    audit.visit(f"{base}/2fa/totp/deactivate/", "MFA turn-off")
    audit.visit(f"{base}/2fa/webauthn/", "security keys")
    audit.visit(f"{base}/2fa/webauthn/add/", "add a security key")
    audit.visit(f"{base}/reauthenticate/", "re-authenticate, with MFA on")
    audit.visit(f"{base}/2fa/reauthenticate/", "MFA re-authenticate")
    audit.visit(f"{base}/users/{root.pk}/mfa-reset/", "reset MFA: confirm")
    audit.visit(f"{base}/nothing-here/", "404", status=404)
    audit.visit(f"{base}/account/sessions/end-others/", "405", status=405)

    page.click("header button:has-text('Log out')")
    page.wait_for_url(f"{base}/login/")
    audit.check("logged out")
    _log_in(page, base, root.email)
    page.wait_for_url(f"{base}/2fa/authenticate/")
    audit.check("MFA authenticate")
    page.fill("input[name=code]", "000000")
    page.click("main button[type=submit]")
    audit.check("MFA authenticate with a wrong code")
    audit.assert_clean()


def test_forced_mfa_and_forbidden_pages(live_server, page, settings):
    settings.IAM_MFA_REQUIRED_GROUPS = ["root"]
    base = live_server.url
    UserFactory(email="root@shop.example", groups=["root"])
    UserFactory(email="plain@shop.example", groups=["backoffice-users"])
    audit = Audit(page)
    _log_in(page, base, "root@shop.example")
    page.wait_for_url(f"{base}/2fa/totp/activate/")
    audit.check("forced MFA set-up")
    page.context.clear_cookies()

    _log_in(page, base, "plain@shop.example")
    page.wait_for_url(f"{base}/")
    audit.check("dashboard without rights")
    audit.visit(f"{base}/groups/", "403", status=403)
    assert User.objects.count() == 2
    audit.assert_clean()


CONTRAST = """([a, b]) => {
  const lum = (css) => {
    const [r, g, b] = css.match(/[\\d.]+/g).slice(0, 3).map(Number).map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}"""


def test_focus_skip_link_policy_text_and_sessions_width(live_server, browser):
    base = live_server.url
    UserFactory(email="root@shop.example", groups=["root"])
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    _log_in(page, base, "root@shop.example")
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/")
    page.keyboard.press("Tab")  # the first stop is the skip link, shown when focused
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    assert page.evaluate("document.activeElement.getBoundingClientRect().top") >= 0
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"

    # 1.4.11: the focus halo of a checkbox is 3:1 at least against the card.
    page.goto(f"{base}/users/add/")
    box = page.get_by_label("root")
    box.focus()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")
    outline = box.evaluate(
        "el => { const s = getComputedStyle(el); "
        "return [s.outlineStyle, s.outlineWidth, s.outlineColor]; }"
    )
    assert outline[0] != "none" and float(outline[1].rstrip("px")) >= 2
    card = box.evaluate("el => getComputedStyle(el.closest('.card')).backgroundColor")
    assert page.evaluate(CONTRAST, [outline[2], card]) >= 3

    # The password policy is help, not an error: not red.
    page.goto(f"{base}/password/change/")
    policy = page.locator("#id_password1_helptext li").first
    color = policy.evaluate("el => getComputedStyle(el).color")
    assert color != "rgb(180, 35, 24)", color  # --danger
    assert "Log in" not in page.locator("h1").inner_text() and "Change password" in page.title()

    # My sessions fits 1280 px: nothing cut off, the browser named.
    page.goto(f"{base}/account/sessions/")
    wrap = page.locator(".table-wrap")
    assert wrap.evaluate("el => el.scrollWidth <= el.clientWidth")
    assert "Chrome on Linux" in wrap.inner_text() or "Chrome" in wrap.inner_text()
