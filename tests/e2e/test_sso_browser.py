"""SSO through a real OpenID provider's pages, in a real browser: both
strategies, the claims a real provider sends, PKCE it requires, and a fresh
login at the provider before a sensitive action.

The provider is the `oidc-provider` npm package (OpenID Certified), started
here with node on loopback; its development login form takes the account id
as login and any password.
"""

import re

import pytest

from accounts.models import AuditEvent, User
from sso.models import Identity
from tests.e2e.axe import Audit
from tests.e2e.provider import e2e_provider, log_in_at_provider, start_provider
from tests.factories import GroupFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def oidc_provider(live_server, settings):
    process, issuer = start_provider(live_server)
    settings.IAM_SSO_PROVIDERS = {
        "e2e": e2e_provider(
            issuer,
            tenant="",
            authority="",
            role_claim="roles",
            role_map='{"support": ["support"]}',
            allowed_tenants=[],
            # Logging out here only: logout at the provider too is
            # tests/e2e/test_sso_logout_browser.py.
            logout="false",
        )
    }
    yield settings.IAM_SSO_PROVIDERS["e2e"]
    process.terminate()
    process.wait(timeout=10)


def _sso(page, base, account):
    page.context.clear_cookies()  # a fresh session at the provider too
    page.goto(f"{base}/login/")
    page.click("button:has-text('Log in with Company SSO')")
    log_in_at_provider(page, account)


def _age_authentication(page, seconds=11 * 60):
    """As if this browser's last authentication were `seconds` old."""
    from importlib import import_module

    from django.conf import settings

    from tests.conftest import age_authentication

    (cookie,) = [c for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME]
    age_authentication(
        import_module(settings.SESSION_ENGINE).SessionStore(cookie["value"]), seconds
    )


def test_pre_registered_and_auto_provision(live_server, page, oidc_provider, settings):
    base = live_server.url
    GroupFactory(name="support")
    # No local password: her first SSO login links at once (one with a
    # password is linked only with proof: test_link_page_proves_with_the_password).
    ada = UserFactory(
        email="ada@shop.example", first_name="Ada", last_name="Lovelace", password="!"
    )

    # pre-registered: Ada has an account, Alan has none.
    _sso(page, base, "ada")
    page.wait_for_url(f"{base}/")
    assert page.get_by_test_id("email").inner_text() == "ada@shop.example"
    assert Identity.objects.get(user=ada).subject == "ada"
    assert list(ada.groups.values_list("name", flat=True)) == ["support"]
    page.click("header button:has-text('Log out')")
    page.wait_for_url(f"{base}/login/")

    _sso(page, base, "alan")
    page.wait_for_url(f"{base}/login/")
    assert "no Back Office account for alan@shop.example" in page.locator(".messages").inner_text()
    assert not User.objects.filter(email="alan@shop.example").exists()

    # auto-provision: Alan's first login creates his account.
    oidc_provider["strategy"] = "auto-provision"
    settings.IAM_SSO_PROVIDERS = {"e2e": dict(oidc_provider)}
    _sso(page, base, "alan")
    page.wait_for_url(f"{base}/")
    assert page.get_by_test_id("full-name").inner_text() == "Alan Turing"
    alan = User.objects.get(email="alan@shop.example")
    assert list(alan.groups.values_list("name", flat=True)) == ["backoffice-users"]
    assert not alan.has_usable_password()


def test_link_page_proves_with_the_password(live_server, page, oidc_provider):
    """Erin has an account with a password she chose: her first SSO login
    asks her to prove it is hers before the link (and her mapped group)."""
    from tests.factories import PASSWORD

    base = live_server.url
    GroupFactory(name="support")
    erin = UserFactory(email="erin@shop.example", password_proven_for="erin@shop.example")
    _sso(page, base, "erin")
    page.wait_for_url(f"{base}/sso/link/")
    assert page.get_by_role("heading", name="Link your account").is_visible()
    assert "erin@shop.example" in page.locator("main").inner_text()
    assert not Identity.objects.exists()
    axe = Audit(page)
    axe.check("link your account")
    page.fill("input[name=password]", "not her password")
    page.click("button:has-text('Confirm and link')")
    assert "not this account" in page.locator("[role=alert]").inner_text()
    axe.check("link your account, wrong password")
    axe.assert_clean()
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Confirm and link')")
    page.wait_for_url(f"{base}/")
    assert page.get_by_test_id("email").inner_text() == "erin@shop.example"
    assert Identity.objects.get(user=erin).subject == "erin"
    assert list(erin.groups.values_list("name", flat=True)) == ["support"]
    event = AuditEvent.objects.get(action="sso.linked")
    assert event.details == {
        "provider": "e2e",
        "subject": "erin",
        "proof": "password",
        "email_vouched_by": "email_verified",
    }


def test_sensitive_action_asks_the_provider_for_a_fresh_login(live_server, page, oidc_provider):
    """Ada came in through SSO eleven minutes ago and her provider session is
    still alive: blocking a user sends her to log in again at the provider
    (prompt=login), then the block is done."""
    from django.contrib.auth.hashers import make_password

    base = live_server.url
    UserFactory(email="ada@shop.example", password=make_password(None), groups=["root"])
    target = UserFactory(email="target@shop.example")
    _sso(page, base, "ada")
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/users/{target.pk}/block/")  # the question asks nothing yet
    _age_authentication(page)  # she left the page open for eleven minutes

    page.click("main button:has-text('Block user')")
    page.wait_for_url(re.compile(rf"^{re.escape(base)}/sso/e2e/reauthenticate/\?next="))
    assert page.get_by_role("heading", name="Confirm it's you").is_visible()
    target.refresh_from_db()
    assert target.is_active
    page.click("button:has-text('Log in again with Company SSO')")
    log_in_at_provider(page, "ada")  # asked again, although its session is alive
    page.wait_for_url(f"{base}/users/{target.pk}/")
    assert "target@shop.example blocked" in page.locator(".messages").inner_text()
    target.refresh_from_db()
    assert not target.is_active


def test_real_provider_claims_and_pkce(live_server, page, oidc_provider, settings):
    base = live_server.url
    GroupFactory(name="support")
    oidc_provider["strategy"] = "auto-provision"
    settings.IAM_SSO_PROVIDERS = {"e2e": dict(oidc_provider)}

    # Only `name` and a roles string: Erin Evans, in support.
    _sso(page, base, "erin")
    page.wait_for_url(f"{base}/")
    assert page.get_by_test_id("full-name").inner_text() == "Erin Evans"
    erin = User.objects.get(email="erin@shop.example")
    assert set(erin.groups.values_list("name", flat=True)) == {"backoffice-users", "support"}
    page.click("header button:has-text('Log out')")

    # email_verified false, or not sent at all: no account.
    for account in ("eve", "max"):
        _sso(page, base, account)
        page.wait_for_url(f"{base}/login/")
        assert "does not vouch for your email" in page.locator(".messages").inner_text()
        assert not User.objects.filter(email=f"{account}@shop.example").exists()

    # This provider requires PKCE: switched off here, it answers invalid_request.
    settings.IAM_SSO_PROVIDERS = {"e2e": {**oidc_provider, "pkce": "false"}}
    page.context.clear_cookies()
    page.goto(f"{base}/login/")
    page.click("button:has-text('Log in with Company SSO')")
    page.wait_for_url(f"{base}/login/")
    message = page.locator(".messages").inner_text()
    assert "IAM_SSO_E2E_PKCE" in message and "redirect URI" in message
    event = AuditEvent.objects.filter(action="sso.failed").latest("id")
    assert event.details["reason"] == "idp_error:invalid_request:check_pkce_and_redirect_uri"
    assert "PKCE" in event.details["provider_said"]
