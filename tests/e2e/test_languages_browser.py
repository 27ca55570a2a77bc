"""German in a real browser: a German Chromium sees German pages before
login, the switcher turns them English, and a German account stays German
after login whatever the browser asks for."""

import pytest
from playwright.sync_api import expect

from accounts.models import User
from tests.factories import PASSWORD, UserFactory
from tests.support.i18n import back_office_urls, english_left, make_world

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def german_page(browser):
    context = browser.new_context(locale="de-DE")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def test_log_in_in_german_and_see_german_pages(live_server, german_page):
    page = german_page
    UserFactory(email="grace@shop.example", first_name="Grace", last_name="Hopper", groups=["root"])
    page.goto(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="Anmelden")).to_be_visible()
    assert page.locator("html").get_attribute("lang") == "de"

    page.fill("#id_login", "grace@shop.example")
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Anmelden')")
    page.wait_for_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="Willkommen, Grace")).to_be_visible()
    nav = page.get_by_role("navigation", name="Hauptmenü")
    for link, heading in (
        ("Benutzer", "Benutzer"),
        ("Gruppen", "Gruppen"),
        ("Überwachungsprotokoll", "Überwachungsprotokoll"),
    ):
        nav.get_by_role("link", name=link).click()
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        assert not english_left(page.content()), page.url
    page.click("header a:has-text('Mein Konto')")
    expect(page.get_by_role("heading", name="Zwei-Faktor-Authentifizierung")).to_be_visible()
    assert not english_left(page.content())
    page.click("header button:has-text('Abmelden')")
    page.wait_for_url(f"{live_server.url}/login/")


def test_the_switcher_and_the_accounts_own_language(live_server, german_page):
    page = german_page
    user = UserFactory(email="ada@shop.example", first_name="Ada", last_name="Lovelace")
    page.goto(f"{live_server.url}/login/")
    page.get_by_test_id("language-switcher").get_by_role("button", name="English").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.get_by_test_id("language-switcher").get_by_role("button", name="Deutsch").click()
    expect(page.get_by_role("heading", name="Anmelden")).to_be_visible()
    page.get_by_test_id("language-switcher").get_by_role("button", name="English").click()

    # An English login page, but the account says German: German after login.
    User.objects.filter(pk=user.pk).update(language="de")
    page.fill("#id_login", "ada@shop.example")
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="Willkommen, Ada")).to_be_visible()

    # My account: back to the browser's choice (the English cookie).
    page.goto(f"{live_server.url}/account/")
    page.select_option("#id_language", "")
    page.click("button:has-text('Sprache speichern')")
    expect(page.get_by_role("heading", name="My account")).to_be_visible()


def test_every_back_office_page_in_german_in_the_browser(live_server, german_page, root_user):
    """Every GET screen of the Back Office (the list test_i18n renders over
    HTTP) in a German Chromium, as the browser shows it: German throughout.
    The same pages in English are the accessibility test's journeys."""
    urls = back_office_urls(make_world(root_user))
    page = german_page
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_login", root_user.email)
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Anmelden')")
    page.wait_for_url(f"{live_server.url}/")
    shown = 0
    for url in urls:
        response = page.goto(live_server.url + url)
        if response.status == 405:  # a button's POST address: its page is the 405 one
            continue
        assert response.status == 200, (url, response.status)
        assert page.locator("html").get_attribute("lang") == "de", url
        assert not english_left(page.content()), url
        shown += 1
    assert shown >= 15
