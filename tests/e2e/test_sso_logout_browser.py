"""Single logout with a real OpenID provider (the `oidc-provider` package,
OpenID Certified) and a real browser: logging out here logs out at the
provider (RP-initiated logout), and the provider's logout elsewhere ends
the Back Office session by a back-channel logout token."""

import re
import threading
import time

import pytest
import requests

from accounts.models import AuditEvent
from sso.models import SsoSession
from tests.e2e.provider import e2e_provider, log_in_at_provider, start_provider
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def provider(live_server, settings):
    """The provider, with RP-initiated and back-channel logout for our client."""
    process, issuer = start_provider(
        live_server,
        POST_LOGOUT_REDIRECT_URIS=f"{live_server.url}/login/",
        BACKCHANNEL_LOGOUT_URI=f"{live_server.url}/sso/e2e/backchannel-logout/",
    )
    said: list[str] = []  # what it prints (its back-channel calls), for failures
    threading.Thread(target=lambda: said.extend(process.stdout), daemon=True).start()
    settings.IAM_SSO_PROVIDERS = {"e2e": e2e_provider(issuer)}
    yield issuer, said
    process.terminate()
    process.wait(timeout=10)


def _sso_login(page, base, account):
    page.goto(f"{base}/login/")
    page.click("button:has-text('Log in with Company SSO')")
    log_in_at_provider(page, account)
    page.wait_for_url(f"{base}/")


def test_logout_here_logs_out_at_the_provider(live_server, page, provider):
    base = live_server.url
    UserFactory(email="ada@shop.example", password="!")
    _sso_login(page, base, "ada")
    assert SsoSession.objects.get().sid  # the provider's session id was kept

    page.click("header button:has-text('Log out')")
    # Our page between the two logouts, then the provider asks to confirm.
    page.click("button:has-text('Yes, sign me out')")
    page.wait_for_url(re.compile(re.escape(f"{base}/login/?state=")))
    assert "You have been logged out, also at Company SSO." in page.content()
    assert page.get_by_role("button", name="Log in with Company SSO").is_visible()

    # The provider's session is gone: another SSO login asks for credentials.
    page.click("button:has-text('Log in with Company SSO')")
    page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/interaction/"))
    assert page.locator("input[name=login]").is_visible()
    log_in_at_provider(page, "ada")
    page.wait_for_url(f"{base}/")


def test_logout_at_the_provider_ends_the_back_office_session(live_server, browser, provider):
    base = live_server.url
    issuer, said = provider
    UserFactory(email="ada@shop.example", password="!")
    UserFactory(email="alan@shop.example", password="!")
    first, other, bystander = (browser.new_context() for _ in range(3))
    try:
        page = first.new_page()
        _sso_login(page, base, "ada")
        alan = bystander.new_page()
        _sso_login(alan, base, "alan")

        # Ada logs out at the provider somewhere else (another browser that
        # holds her provider session, not ours).
        other.add_cookies(
            [c for c in first.cookies() if c["domain"] == "127.0.0.1" and c["name"].startswith("_")]
        )
        elsewhere = other.new_page()
        end_session = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=5).json()[
            "end_session_endpoint"
        ]
        elsewhere.goto(end_session)
        elsewhere.click("button:has-text('Yes, sign me out')")
        elsewhere.wait_for_load_state()

        # The provider's log is read by a thread of its own: give it a moment.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            calls = [line for line in said if line.startswith("backchannel")]
            if any(line.startswith("backchannel ok ada with sid") for line in calls):
                break
            time.sleep(0.05)
        assert any(line.startswith("backchannel ok ada with sid") for line in calls), calls
        event = AuditEvent.objects.get(action="sso.backchannel_logout")
        assert event.details == {"provider": "e2e", "by_sid": True, "ended": 1}
        # The first browser, which did nothing, is logged out here.
        page.goto(f"{base}/account/")
        page.wait_for_url(re.compile(re.escape(f"{base}/login/")))
        # Alan, logged in at the same time, is not.
        alan.goto(f"{base}/account/")
        assert alan.url == f"{base}/account/"
    finally:
        for context in (first, other, bystander):
            context.close()
