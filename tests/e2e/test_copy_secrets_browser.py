"""Secrets shown once can be copied with one click and stay inside their card:
the API client's secret and the authenticator app's secret."""

import pytest

from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _page(browser, base, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    return context.new_page()


def _log_in(page, base, email):
    page.goto(f"{base}/login/")
    page.fill("#id_login", email)
    page.fill("#id_password", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}/")


def _inside_its_card(page, selector):
    return page.eval_on_selector(
        selector,
        """el => {
            const card = el.closest('.card, main').getBoundingClientRect();
            const box = el.getBoundingClientRect();
            return box.right <= card.right + 1 && el.scrollWidth <= el.clientWidth + 1;
        }""",
    )


@pytest.mark.parametrize("width", [1280, 1920])
def test_the_api_client_secret_is_copied_and_wraps_in_its_card(live_server, browser, width):
    base = live_server.url.replace("127.0.0.1", "localhost")  # the clipboard needs a secure context
    UserFactory(email="root@shop.example", groups=["root"])
    page = _page(browser, base, width)
    _log_in(page, base, "root@shop.example")
    page.goto(f"{base}/api-clients/add/")
    page.fill("#id_name", "Warehouse")
    page.locator("input[name=grant][value=client_credentials]").check()
    page.click("main form button[type=submit]")
    secret = page.get_by_test_id("client-secret").text_content()
    assert len(secret) > 40

    page.get_by_role("button", name="Copy client_secret").click()
    page.locator(".copy-status").filter(
        has_text="Copied"
    ).wait_for()  # said, for screen readers too
    assert page.evaluate("navigator.clipboard.readText()") == secret
    assert _inside_its_card(page, "[data-testid=client-secret]")


def test_the_authenticator_secret_can_be_selected_and_copied(live_server, browser):
    base = live_server.url.replace("127.0.0.1", "localhost")
    UserFactory(email="ada@shop.example", groups=["backoffice-users"])
    page = _page(browser, base, 1280)
    _log_in(page, base, "ada@shop.example")
    page.goto(f"{base}/2fa/totp/activate/")
    # Not a disabled input any more: a block of text the reader can select.
    secret = page.locator("#authenticator_secret")
    assert secret.evaluate("el => el.tagName") == "CODE"
    page.get_by_role("button", name="Copy authenticator secret").click()
    assert page.evaluate("navigator.clipboard.readText()") == secret.text_content()
    assert _inside_its_card(page, "#authenticator_secret")
