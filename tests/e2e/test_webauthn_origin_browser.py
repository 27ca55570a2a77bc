"""Security keys at the address `make run` prints (http://localhost:PORT), and
a clear word where they cannot work: on http://127.0.0.1 the browser refuses
every key (an IP address is no relying party id), so the page says so
instead of offering a dead button; a refusal by the browser is said too."""

import pytest
from allauth.mfa.models import Authenticator

from tests.e2e.webauthn import virtual_authenticator
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

UNSUPPORTED = "This browser cannot use security keys here (it needs HTTPS or localhost)."


@pytest.fixture
def authenticator(page):
    virtual_authenticator(page, transport="usb")


@pytest.fixture
def script_errors(page):
    seen = []
    page.on("pageerror", lambda e: seen.append(str(e)))
    page.on("console", lambda m: seen.append(m.text) if m.type == "error" else None)
    return seen


def _log_in(page, base, email):
    page.goto(f"{base}/login/")
    page.fill("#id_login", email)
    page.fill("#id_password", PASSWORD)
    page.click("main form[action='/login/'] button[type=submit]")


def test_at_localhost_a_key_is_added_and_then_asked_for(
    live_server, page, authenticator, script_errors
):
    base = live_server.url.replace("127.0.0.1", "localhost")
    assert base.startswith("http://localhost:")
    ada = UserFactory(email="ada@shop.example")
    _log_in(page, base, ada.email)
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/2fa/webauthn/add/")
    assert page.get_by_test_id("webauthn-note").is_hidden()
    page.fill("input[name=name]", "USB key")
    page.click("#mfa_webauthn_add")
    page.wait_for_url(f"{base}/2fa/recovery-codes/")
    assert Authenticator.objects.filter(user=ada, type="webauthn").count() == 1

    # The same key again: the browser refuses it, and the page says why.
    page.goto(f"{base}/2fa/webauthn/add/")
    page.fill("input[name=name]", "Same key")
    page.click("#mfa_webauthn_add")
    note = page.get_by_test_id("webauthn-note")
    note.wait_for(state="visible")
    assert note.get_attribute("role") == "alert"
    assert "already registered" in note.inner_text()
    assert page.url == f"{base}/2fa/webauthn/add/"

    # The key is the second step of the next login.
    page.click("header button:has-text('Log out')")
    _log_in(page, base, ada.email)
    page.wait_for_url(f"{base}/2fa/authenticate/")
    page.click("button:has-text('Use a security key')")
    page.wait_for_url(f"{base}/")

    # And it re-authenticates for a sensitive change.
    page.goto(f"{base}/2fa/webauthn/reauthenticate/?next=/account/")
    page.click("#mfa_webauthn_reauthenticate")
    page.wait_for_url(f"{base}/account/")
    assert script_errors == []


def test_on_an_ip_address_the_page_says_keys_cannot_work_here(live_server, page, authenticator):
    port = live_server.url.rsplit(":", 1)[1]
    base = f"http://127.0.0.1:{port}"
    ada = UserFactory(email="ada@shop.example")
    _log_in(page, base, ada.email)
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/2fa/webauthn/add/")
    note = page.get_by_test_id("webauthn-note")
    assert note.is_visible() and note.inner_text() == UNSUPPORTED
    assert page.locator("#mfa_webauthn_add").is_disabled()
    page.goto(f"{base}/logout/")
    page.click("main button:has-text('Log out')")
    page.goto(f"{base}/login/")
    assert page.get_by_test_id("webauthn-note").inner_text() == UNSUPPORTED
    assert page.locator("#passkey_login").is_disabled()


def test_mfa_pages_in_german_fit_1280_and_pass_axe(live_server, browser):
    """The MFA overview, the key list (two keys, long German names), add,
    rename, remove, recovery codes: axe clean, and the key list fits."""
    from tests.e2e.axe import Audit

    base = live_server.url
    context = browser.new_context(locale="de-DE", viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    cdp = None
    ada = UserFactory(email="ada.lovelace-byron@shop.example", language="de")
    _log_in(page, base, ada.email)
    page.wait_for_url(f"{base}/")
    previous = None
    for name in ("Arbeitslaptop im Büro Hauptsitz", "Sicherheitsschlüssel Schreibtisch"):
        if previous:  # a second key is another authenticator (the first one is known)
            cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": previous})
        cdp, previous = virtual_authenticator(page, cdp=cdp)
        page.goto(f"{base}/2fa/webauthn/add/")
        page.fill("input[name=name]", name)
        page.check("input[name=passwordless]")
        page.click("#mfa_webauthn_add")
        page.wait_for_url(lambda url: "/add/" not in url)
    assert Authenticator.objects.filter(user=ada, type="webauthn").count() == 2
    audit = Audit(page)
    audit.visit(f"{base}/2fa/recovery-codes/")
    key = Authenticator.objects.filter(user=ada, type="webauthn").first()
    for url in ("/2fa/", "/2fa/webauthn/", "/2fa/webauthn/add/", "/2fa/recovery-codes/generate/"):
        audit.visit(f"{base}{url}")
    audit.visit(f"{base}/2fa/webauthn/keys/{key.pk}/edit/")
    audit.visit(f"{base}/2fa/webauthn/keys/{key.pk}/remove/")
    page.goto(f"{base}/2fa/webauthn/")
    assert page.locator("h1").inner_text() == "Sicherheitsschlüssel und Passkeys"
    wrap = page.locator(".table-wrap")
    assert wrap.evaluate("el => el.scrollWidth <= el.clientWidth")
    context.close()
    audit.assert_clean()
