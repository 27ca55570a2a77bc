"""MFA in a real browser: forced set-up, login with a code, recovery codes."""

import re

import pytest

from tests.factories import PASSWORD, UserFactory
from tests.support.mfa import totp

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _password_login(page, base):
    page.goto(f"{base}/login/")
    page.fill("#id_login", "root@shop.example")
    page.fill("#id_password", PASSWORD)
    page.click("main button:has-text('Log in')")


def _log_out(page, base):
    page.click("header button:has-text('Log out')")
    page.wait_for_url(f"{base}/login/")


def test_forced_setup_then_code_then_recovery_code_once(live_server, page, settings):
    settings.IAM_MFA_REQUIRED_GROUPS = ["root"]
    base = live_server.url
    UserFactory(email="root@shop.example", first_name="Grace", last_name="Hopper", groups=["root"])

    _password_login(page, base)
    page.wait_for_url(f"{base}/2fa/totp/activate/")
    assert "requires two-factor authentication" in page.locator(".messages").inner_text()
    assert page.locator("img[src^='data:image/svg+xml']").is_visible()  # the QR code
    page.goto(f"{base}/users/")  # nothing else opens
    page.wait_for_url(f"{base}/2fa/totp/activate/")
    secret = page.locator("#authenticator_secret").text_content()
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret)
    # The next window's code, so the later login's code can never be this one.
    page.fill("input[name=code]", totp(secret, step=1))
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/2fa/recovery-codes/")
    codes = page.locator("#recovery_codes").input_value().split()
    assert len(codes) == 10
    page.goto(f"{base}/")
    assert page.get_by_test_id("full-name").inner_text() == "Grace Hopper"
    _log_out(page, base)

    def log_in_with_code(code):
        _password_login(page, base)
        page.wait_for_url(f"{base}/2fa/authenticate/")
        page.fill("input[name=code]", code)
        page.click("main button[type=submit]")

    log_in_with_code(totp(secret, step=-1))
    page.wait_for_url(f"{base}/")
    _log_out(page, base)

    log_in_with_code(codes[0])  # a recovery code, once
    page.wait_for_url(f"{base}/")
    _log_out(page, base)

    log_in_with_code(codes[0])  # the same recovery code again
    assert "Incorrect code" in page.locator("main").inner_text()
    assert page.url == f"{base}/2fa/authenticate/"
