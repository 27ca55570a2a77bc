"""Passkeys in a real browser: Chromium's virtual authenticator (CDP WebAuthn
domain) plays the phone or laptop that holds the key. Register on the MFA
page, log out, log in with "Log in with a passkey" and no password, remove
it (refused while it is the last factor of a user the policy covers), all
under our CSP (no inline script)."""

import pytest
from allauth.mfa.models import Authenticator

from accounts.models import AuditEvent, User
from tests.e2e.webauthn import virtual_authenticator
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def authenticator(page):
    """A platform authenticator with user verification (a fingerprint that
    always matches), as a laptop or phone would offer."""
    cdp, key = virtual_authenticator(page)
    yield lambda: cdp.send("WebAuthn.getCredentials", {"authenticatorId": key})["credentials"]


@pytest.fixture
def csp_reports(page):
    """What the browser refused under our Content-Security-Policy, and any
    script error: both must stay empty."""
    seen = []
    page.on(
        "console",
        lambda m: seen.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on("pageerror", lambda e: seen.append(str(e)))
    return seen


def _log_out(page, base):
    page.click("header button:has-text('Log out')")
    page.wait_for_url(f"{base}/login/")


def test_register_log_in_with_a_passkey_and_remove_it(
    live_server, page, settings, authenticator, csp_reports
):
    settings.IAM_MFA_REQUIRED_GROUPS = ["root"]
    base = live_server.url
    grace = UserFactory(
        email="root@shop.example", first_name="Grace", last_name="Hopper", groups=["root"]
    )

    # The password once; the policy asks for a second factor: a passkey.
    page.goto(f"{base}/login/")
    page.fill("#id_login", grace.email)
    page.fill("#id_password", PASSWORD)
    page.click("main button:has-text('Log in')")
    page.wait_for_url(f"{base}/2fa/totp/activate/")
    page.goto(f"{base}/2fa/webauthn/add/")
    page.fill("input[name=name]", "Work laptop")
    page.check("input[name=passwordless]")
    page.click("#mfa_webauthn_add")
    page.wait_for_url(f"{base}/2fa/recovery-codes/")
    assert len(authenticator()) == 1
    assert authenticator()[0]["isResidentCredential"] is True
    page.goto(f"{base}/account/")
    assert page.get_by_test_id("webauthn-status").inner_text() == "yes"
    page.click("main a:has-text('Security keys and passkeys')")
    page.wait_for_url(f"{base}/2fa/webauthn/")
    keys = page.get_by_test_id("webauthn-keys").inner_text()
    assert "Work laptop" in keys and "Passkey" in keys
    _log_out(page, base)

    # No password: the passkey is the login and the second factor.
    page.click("button:has-text('Log in with a passkey')")
    page.wait_for_url(f"{base}/")
    assert page.get_by_test_id("full-name").inner_text() == "Grace Hopper"
    page.goto(f"{base}/users/")
    assert page.url == f"{base}/users/"  # the MFA policy is met
    assert AuditEvent.objects.filter(action="login.succeeded", details__method="passkey").exists()

    # The last second factor of a user the policy covers: not offered, refused.
    page.goto(f"{base}/2fa/webauthn/")
    assert page.locator("main a:has-text('Remove')").count() == 0
    key = Authenticator.objects.get(user=grace, type="webauthn")
    page.goto(f"{base}/2fa/webauthn/keys/{key.pk}/remove/")
    assert "cannot be turned off" in page.get_by_test_id("removal-refused").inner_text()
    assert page.locator("main button:has-text('Remove')").count() == 0
    assert Authenticator.objects.filter(pk=key.pk).exists()

    # Outside the policy, the key may go.
    settings.IAM_MFA_REQUIRED_GROUPS = []
    page.goto(f"{base}/2fa/webauthn/")
    page.click("main a:has-text('Remove')")
    page.click("main button:has-text('Remove')")
    page.wait_for_url(f"{base}/2fa/webauthn/")
    assert "No security keys or passkeys yet." in page.locator("main").inner_text()
    assert not Authenticator.objects.filter(user=grace, type="webauthn").exists()
    assert AuditEvent.objects.filter(action="mfa.webauthn.removed").exists()
    assert csp_reports == []


def test_a_blocked_account_cannot_log_in_with_its_passkey(
    live_server, page, authenticator, csp_reports
):
    base = live_server.url
    ada = UserFactory(email="ada@shop.example", first_name="Ada", last_name="Lovelace")
    page.goto(f"{base}/login/")
    page.fill("#id_login", ada.email)
    page.fill("#id_password", PASSWORD)
    page.click("main button:has-text('Log in')")
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/2fa/webauthn/add/")
    page.check("input[name=passwordless]")
    page.click("#mfa_webauthn_add")
    page.wait_for_url(f"{base}/2fa/recovery-codes/")
    _log_out(page, base)

    User.objects.filter(pk=ada.pk).update(status=User.Status.BLOCKED)
    page.click("button:has-text('Log in with a passkey')")
    # (the page already says "You have signed out": wait for the answer)
    page.wait_for_selector(".messages:has-text('This passkey was not accepted.')")
    assert page.url == f"{base}/login/"
    page.goto(f"{base}/")
    assert page.url.startswith(f"{base}/login/")
    assert AuditEvent.objects.filter(
        action="login.failed", target_id=str(ada.pk), details__reason="blocked"
    ).exists()
    assert csp_reports == []


def test_a_security_key_as_the_second_factor_after_the_password(
    live_server, page, settings, authenticator, csp_reports
):
    settings.IAM_MFA_REQUIRED_GROUPS = ["root"]
    base = live_server.url
    grace = UserFactory(
        email="root@shop.example", first_name="Grace", last_name="Hopper", groups=["root"]
    )

    def password_login():
        page.goto(f"{base}/login/")
        page.fill("#id_login", grace.email)
        page.fill("#id_password", PASSWORD)
        page.click("main button:has-text('Log in')")

    password_login()
    page.wait_for_url(f"{base}/2fa/totp/activate/")
    page.goto(f"{base}/2fa/webauthn/add/")
    page.fill("input[name=name]", "USB key")
    page.click("#mfa_webauthn_add")  # not passwordless: a second factor only
    page.wait_for_url(f"{base}/2fa/recovery-codes/")
    page.goto(f"{base}/2fa/webauthn/")
    assert "Security key" in page.get_by_test_id("webauthn-keys").inner_text()
    _log_out(page, base)

    password_login()
    page.wait_for_url(f"{base}/2fa/authenticate/")
    page.click("button:has-text('Use a security key')")
    page.wait_for_url(f"{base}/")
    assert page.get_by_test_id("full-name").inner_text() == "Grace Hopper"
    page.goto(f"{base}/users/")
    assert page.url == f"{base}/users/"
    assert csp_reports == []
