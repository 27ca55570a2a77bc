"""SAML login through a real IdP's pages, in a real browser: SimpleSAMLphp
(Debian's package, served by `php -S`, tests/e2e/saml_idp.py) signs the
assertions; people log in at its own form. It runs on 127.0.0.1 and the live
server on localhost, two sites: its POST to our ACS arrives without our
SameSite=Lax cookie, and our ACS page re-posts it (as in production).
"""

import re
from urllib.parse import quote

import pytest
import requests
from playwright.sync_api import expect

from accounts.models import AuditEvent, User
from sso.models import Identity, SsoSession
from tests.e2e.axe import Audit
from tests.e2e.saml_idp import (
    PASSWORD,
    PEOPLE,
    PERSISTENT_FORMAT,
    SamlIdp,
    log_in_at_idp,
    sp_from_metadata,
)
from tests.factories import GroupFactory, UserFactory
from tests.support.saml import key_and_cert

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
NAME = "SimpleSAMLphp"


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    """One SimpleSAMLphp for the whole module (it starts in about a second)."""
    idp = SamlIdp(tmp_path_factory.mktemp("simplesamlphp"), PEOPLE).start()
    yield idp
    idp.stop()


@pytest.fixture(autouse=True)
def _idp_said_on_failure(request, idp):
    """What SimpleSAMLphp said during a test that failed (its refusals are
    only in its log)."""
    start = len(idp.said())
    failed = request.session.testsfailed
    yield
    if request.session.testsfailed > failed:
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        reporter.write_line(f"\n--- SimpleSAMLphp said during {request.node.name}:")
        reporter.write_line(idp.said()[start:][-6000:])


def test_the_idp_answers_its_metadata_and_its_login_form(idp, page):
    answer = requests.get(idp.metadata_url, timeout=5)
    assert answer.headers["Content-Type"].startswith("application/samlmetadata+xml")
    assert f'entityID="{idp.entity_id}"' in answer.text
    assert "SingleSignOnService" in answer.text and "SingleLogoutService" in answer.text

    # Its own test page of the people's source: the form, then who logged in.
    page.goto(f"{idp.url}/module.php/core/authenticate.php?as=people")
    page.wait_for_url(idp.login_page)
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit], input[type=submit]")
    # Waits for the page the click leads to (reading it at once raced the
    # navigation in CI).
    expect(page.get_by_text("Incorrect username or password")).to_be_visible()
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    expect(page.locator("body")).to_contain_text("ada@shop.example")
    assert "support" in page.locator("body").inner_text(), idp.said()[-3000:]


# --- Through our SP (sso/saml): both strategies, logout at both ends, ForceAuthn


@pytest.fixture(scope="module")
def sp_keys(tmp_path_factory):
    """Our SP's signing key and certificate (SimpleSAMLphp checks our requests with it)."""
    return key_and_cert(tmp_path_factory.mktemp("sp"), "backoffice-sp")


@pytest.fixture
def saml(live_server, settings, idp, sp_keys):
    """Our provider `ssp` (kind saml) on SimpleSAMLphp's metadata URL, and
    SimpleSAMLphp trusting our SP as our own metadata describes it."""
    key, cert = sp_keys
    settings.IAM_SSO_PROVIDERS = {
        "ssp": {
            "id": "ssp",
            "kind": "saml",
            "name": NAME,
            "metadata": idp.metadata_url,
            "sp_cert": str(cert),
            "sp_key": str(key),
            "role_attribute": "Role",
            "role_map": '{"support": ["support"]}',
            "strategy": "pre-registered",
            "logout": "true",
            "trust_email": "true",
            "idp_initiated": "false",
        }
    }
    answer = requests.get(f"{live_server.url}/sso/ssp/saml/metadata/", timeout=10)
    assert answer.status_code == 200, answer.text[:2000]
    idp.trust(sp_from_metadata(answer.content))
    yield settings.IAM_SSO_PROVIDERS["ssp"]


def _log_in(page, base, idp, login, button=f"Log in with {NAME}"):
    page.goto(f"{base}/login/")
    page.click(f"button:has-text('{button}')")
    log_in_at_idp(page, idp, login)


def test_pre_registered_and_auto_provision(live_server, page, idp, saml, settings):
    base = live_server.url
    GroupFactory(name="support")
    ada = UserFactory(
        email="ada@shop.example", first_name="Ada", last_name="Lovelace", password="!"
    )

    # pre-registered: Ada has an account; her Role `support` is our group support.
    _log_in(page, base, idp, "ada")
    page.wait_for_url(f"{base}/")
    assert page.get_by_test_id("email").inner_text() == "ada@shop.example"
    identity = Identity.objects.get(user=ada)
    assert (identity.provider, identity.subject) == ("ssp", "ada@shop.example")
    assert list(ada.groups.values_list("name", flat=True)) == ["support"]

    # Alan is known at SimpleSAMLphp, not here: refused, nothing created.
    page.context.clear_cookies()
    _log_in(page, base, idp, "alan")
    page.wait_for_url(f"{base}/login/")
    assert "no Back Office account for alan@shop.example" in page.locator(".messages").inner_text()
    assert not User.objects.filter(email="alan@shop.example").exists()
    assert AuditEvent.objects.get(action="sso.failed").details["reason"] == "no_account"

    # auto-provision: Grace's first login creates her account, in the group
    # her mapped role names (her unmapped role gives nothing).
    settings.IAM_SSO_PROVIDERS = {"ssp": {**saml, "strategy": "auto-provision"}}
    page.context.clear_cookies()
    _log_in(page, base, idp, "grace")
    page.wait_for_url(f"{base}/")
    assert page.get_by_test_id("full-name").inner_text() == "Grace Hopper"
    grace = User.objects.get(email="grace@shop.example")
    assert set(grace.groups.values_list("name", flat=True)) == {"backoffice-users", "support"}
    assert not grace.has_usable_password()
    assert Identity.objects.get(user=grace).subject == "grace@shop.example"


def test_logout_here_logs_out_at_simplesamlphp(live_server, page, idp, saml):
    base = live_server.url
    UserFactory(email="ada@shop.example", password="!")
    _log_in(page, base, idp, "ada")
    page.wait_for_url(f"{base}/")

    page.click("header button:has-text('Log out')")
    page.wait_for_url(re.compile(re.escape(f"{base}/login/?state=")))
    expect(page.get_by_text(f"You have been logged out, also at {NAME}.")).to_be_visible()
    page.goto(f"{base}/account/")
    page.wait_for_url(re.compile(re.escape(f"{base}/login/")))

    # SimpleSAMLphp's session is gone too: logging in again asks for the password.
    page.click(f"button:has-text('Log in with {NAME}')")
    page.wait_for_url(idp.login_page)
    log_in_at_idp(page, idp, "ada")
    page.wait_for_url(f"{base}/account/")


def test_logout_at_simplesamlphp_ends_the_back_office_session(
    live_server, page, browser, idp, saml
):
    """SimpleSAMLphp's logout of its session ends ours of that session only:
    Ada's other browser (another SimpleSAMLphp session) stays logged in."""
    base = live_server.url
    UserFactory(email="ada@shop.example", password="!")
    other = browser.new_context()
    try:
        elsewhere = other.new_page()
        _log_in(elsewhere, base, idp, "ada")
        elsewhere.wait_for_url(f"{base}/")
        _log_in(page, base, idp, "ada")
        page.wait_for_url(f"{base}/")
        assert SsoSession.objects.count() == 2

        # SimpleSAMLphp's own logout: it sends us a LogoutRequest through the
        # browser, we answer, it comes back to where it was asked to.
        page.goto(
            f"{idp.url}/saml2/idp/SingleLogoutService.php?ReturnTo="
            + quote(f"{base}/login/", safe="")
        )
        page.wait_for_url(re.compile(re.escape(f"{base}/login/")))
        event = AuditEvent.objects.get(action="sso.frontchannel_logout")
        assert event.details == {"provider": "ssp", "binding": "saml-redirect", "ended": 1}
        assert SsoSession.objects.count() == 1
        page.goto(f"{base}/")
        page.wait_for_url(re.compile(re.escape(f"{base}/login/")))
        elsewhere.goto(f"{base}/account/")
        assert elsewhere.url == f"{base}/account/"

        # Its own session ended with it: logging in again asks for the password.
        page.click(f"button:has-text('Log in with {NAME}')")
        log_in_at_idp(page, idp, "ada")
        page.wait_for_url(f"{base}/")
    finally:
        other.close()


def test_sensitive_action_asks_simplesamlphp_for_the_password_again(live_server, page, idp, saml):
    """Ada came in through SimpleSAMLphp eleven minutes ago and its session
    is still alive: blocking a user sends a ForceAuthn request, and
    SimpleSAMLphp asks for her password again; then the block is done."""
    base = live_server.url
    UserFactory(email="ada@shop.example", password="!", groups=["root"])
    target = UserFactory(email="target@shop.example")
    _log_in(page, base, idp, "ada")
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/users/{target.pk}/block/")
    _age_authentication(page)

    page.click("main button:has-text('Block user')")
    page.wait_for_url(re.compile(rf"^{re.escape(base)}/sso/ssp/reauthenticate/\?next="))
    expect(page.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    page.click(f"button:has-text('Log in again with {NAME}')")
    log_in_at_idp(page, idp, "ada")  # asked again, although its session is alive
    page.wait_for_url(f"{base}/users/{target.pk}/")
    assert "target@shop.example blocked" in page.locator(".messages").inner_text()
    target.refresh_from_db()
    assert not target.is_active


def test_in_german(live_server, browser, idp, saml):
    """A German browser: the button, the refusal and the logout say it in German."""
    base = live_server.url
    UserFactory(email="ada@shop.example", password="!")
    context = browser.new_context(locale="de-DE")
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        _log_in(page, base, idp, "alan", button=f"Mit {NAME} anmelden")
        page.wait_for_url(f"{base}/login/")
        message = page.locator(".messages").inner_text()
        # The whole reason in German (it names the address, so it is filled in
        # after translation).
        assert (
            f"Anmeldung mit {NAME} fehlgeschlagen: es gibt kein Back-Office-Konto für "
            "alan@shop.example. Bitten Sie einen Administrator, eines anzulegen." in message
        ), message

        # A login SimpleSAMLphp starts on its own: refused, and says why in German.
        page.context.clear_cookies()
        page.goto(f"{idp.url}/saml2/idp/SSOService.php?spentityid=" + quote(idp.sp.entity_id))
        log_in_at_idp(page, idp, "ada")
        page.wait_for_url(f"{base}/login/")
        assert (
            f"Anmeldung mit {NAME} fehlgeschlagen: der Anbieter hat eine Anmeldung gesendet, "
            "die hier niemand angefordert hat." in page.locator(".messages").inner_text()
        )

        page.context.clear_cookies()
        _log_in(page, base, idp, "ada", button=f"Mit {NAME} anmelden")
        page.wait_for_url(f"{base}/")
        page.click("header button:has-text('Abmelden')")
        page.wait_for_url(re.compile(re.escape(f"{base}/login/?state=")))
        expect(page.get_by_text(f"Sie wurden abgemeldet, auch bei {NAME}.")).to_be_visible()
    finally:
        context.close()


def test_persistent_name_id_and_a_login_the_idp_starts(live_server, page, idp, saml, settings):
    """A persistent NameID (an opaque id, the address in the `email`
    attribute) is the identity's subject. A login SimpleSAMLphp starts on its
    own (no request of ours) is refused, unless IAM_SSO_<ID>_IDP_INITIATED."""
    base = live_server.url
    ada = UserFactory(email="ada@shop.example", password="!")
    idp.trust(idp.sp, NameIDFormat=PERSISTENT_FORMAT, **{"simplesaml.nameidattribute": "uid"})
    _log_in(page, base, idp, "ada")
    page.wait_for_url(f"{base}/")
    assert page.get_by_test_id("email").inner_text() == "ada@shop.example"
    assert Identity.objects.get(user=ada).subject == "u-1815"

    idp_first = f"{idp.url}/saml2/idp/SSOService.php?spentityid=" + quote(idp.sp.entity_id)
    page.context.clear_cookies()
    page.goto(idp_first)
    log_in_at_idp(page, idp, "ada")
    page.wait_for_url(f"{base}/login/")
    assert f"Log in with {NAME} failed" in page.locator(".messages").inner_text()
    event = AuditEvent.objects.filter(action="sso.failed").latest("id")
    assert event.details["reason"] == "saml_unsolicited"

    settings.IAM_SSO_PROVIDERS = {"ssp": {**saml, "idp_initiated": "true"}}
    page.context.clear_cookies()
    page.goto(idp_first)
    log_in_at_idp(page, idp, "ada")
    page.wait_for_url(f"{base}/")
    assert page.get_by_test_id("email").inner_text() == "ada@shop.example"


def _age_authentication(page, seconds=11 * 60):
    """As if this browser's last authentication were `seconds` old."""
    from importlib import import_module

    from django.conf import settings

    from tests.conftest import age_authentication

    (cookie,) = [c for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME]
    age_authentication(
        import_module(settings.SESSION_ENGINE).SessionStore(cookie["value"]), seconds
    )


@pytest.mark.parametrize(
    "locale, heading, button",
    [("en-US", "Logging in", "Continue"), ("de-DE", "Anmeldung läuft", "Weiter")],
)
def test_without_javascript_the_re_post_page_has_a_button_and_passes_axe(
    live_server, browser, idp, saml, locale, heading, button
):
    """No script runs: SimpleSAMLphp's page and then ours each show a button
    that carries the answer on; ours is in the product's layout, in the
    browser's language, and axe finds nothing on it."""
    base = live_server.url
    UserFactory(email="ada@shop.example", password="!")
    context = browser.new_context(locale=locale, java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(f"{base}/login/")
        page.locator("main form[action$='/sso/ssp/login/'] button").click()
        log_in_at_idp(page, idp, "ada")
        # SimpleSAMLphp's own auto-post page, without its script.
        page.locator("noscript button[type=submit], button:has-text('Submit')").first.click()
        page.wait_for_url(f"{base}/sso/ssp/saml/acs/")
        expect(page.get_by_role("heading", name=heading)).to_be_visible()
        _axe_on_copy(browser, base, page.content(), f"SAML re-post page ({locale})")
        page.get_by_role("button", name=button).click()
        page.wait_for_url(f"{base}/")
        assert User.objects.get(email="ada@shop.example").last_login is not None
    finally:
        context.close()


def _axe_on_copy(browser, base, html, label):
    """axe needs script, which the page above runs without: the same HTML,
    on our origin (its styles), in a page with script but without ours (it
    would post the form away)."""
    context = browser.new_context()
    page = context.new_page()
    try:
        page.route("**/autosubmit.js", lambda route: route.abort())
        page.goto(f"{base}/login/")
        page.set_content(html)
        audit = Audit(page)
        audit.check(label)
        audit.assert_clean()
    finally:
        context.close()
