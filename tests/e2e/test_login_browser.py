"""Log in and out through the real pages, in a real browser."""

import pytest

from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_log_in_and_out(live_server, page):
    UserFactory(email="grace@shop.example", first_name="Grace", last_name="Hopper", groups=["root"])
    page.goto(f"{live_server.url}/")
    assert page.url == f"{live_server.url}/login/?next=/"

    page.fill("#id_login", "grace@shop.example")
    page.fill("#id_password", "not the password")
    page.click("button:has-text('Log in')")
    assert page.locator(".alert").inner_text().startswith("The email address and/or password")

    page.fill("#id_login", "grace@shop.example")
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url(f"{live_server.url}/")
    assert page.get_by_test_id("full-name").inner_text() == "Grace Hopper"
    assert page.get_by_test_id("email").inner_text() == "grace@shop.example"
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Users").click()
    page.wait_for_url(f"{live_server.url}/users/")
    assert page.get_by_role("heading", name="Users").is_visible()

    page.click("header button:has-text('Log out')")
    page.wait_for_url(f"{live_server.url}/login/")
    assert "signed out" in page.locator(".messages").inner_text()
    page.goto(f"{live_server.url}/users/")
    assert page.url.startswith(f"{live_server.url}/login/")


def test_forgot_password_link(live_server, page):
    page.goto(f"{live_server.url}/login/")
    page.click("text=Forgot password?")
    page.wait_for_url(f"{live_server.url}/password/reset/")
    page.fill("#id_email", "nobody@shop.example")
    page.click("button:has-text('Send reset link')")
    page.wait_for_url(f"{live_server.url}/password/reset/done/")
    assert page.get_by_role("heading", name="Check your email").is_visible()
