"""One layout for every page (issue 21): lists and forms start at the same left
edge of the content column, a flash message is exactly as wide as the cards
beneath it, and a destructive link that leads to a confirmation is outlined."""

import pytest

from tests.factories import PASSWORD, GroupFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

BOX = "el => { const r = el.getBoundingClientRect(); return [r.left, r.width]; }"


@pytest.fixture
def wide(browser, live_server, root_user):
    page = browser.new_context(viewport={"width": 1920, "height": 900}).new_page()
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_login", root_user.email)
    page.fill("#id_password", PASSWORD)
    page.click("main button:has-text('Log in')")
    page.wait_for_url(f"{live_server.url}/")
    yield page
    page.context.close()


def test_lists_and_forms_share_the_left_edge_and_messages_fit_the_cards(live_server, wide):
    page, base = wide, live_server.url
    group = GroupFactory(name="support")

    page.goto(f"{base}/groups/")
    list_left, list_width = page.locator("main .card").first.evaluate(BOX)
    assert list_width > 1400  # the wider column for lists (was 1,120 px)
    page.goto(f"{base}/groups/{group.pk}/")
    form_left, form_width = page.locator("main .card").first.evaluate(BOX)
    assert form_left == list_left and form_width < list_width
    link = page.get_by_role("link", name="Delete group…")
    colours = link.evaluate(
        "el => { const s = getComputedStyle(el); return [s.color, s.borderTopColor]; }"
    )
    assert colours[0] == colours[1] == "rgb(180, 35, 24)"  # --danger, outlined

    page.click("main button:has-text('Save')")  # back to the list, with a message
    page.wait_for_url(f"{base}/groups/")
    assert page.locator(".msg").evaluate(BOX) == page.locator("main .card").first.evaluate(BOX)

    page.goto(f"{base}/account/")
    page.click("button:has-text('Save language')")  # back to the account's form cards
    page.wait_for_selector(".msg")
    assert page.locator(".msg").evaluate(BOX) == page.locator("main .card").first.evaluate(BOX)


def test_allauth_pages_sit_where_the_forms_do(live_server, wide):
    page, base = wide, live_server.url
    page.goto(f"{base}/account/")
    form_left = page.locator("main .card").first.evaluate(BOX)[0]
    page.goto(f"{base}/password/change/")
    assert page.locator("main").evaluate(BOX)[0] == form_left
