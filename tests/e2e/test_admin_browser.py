"""The main admin path, in a real browser: root adds a user with a group, the
user sees only what the group allows, root blocks them and their session ends."""

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD, GroupFactory, RoleFactory, RuleFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NEW_PASSWORD = "viewer passphrase 2026"


def _log_in(page, base, email, password):
    page.goto(f"{base}/login/")
    page.fill("#id_login", email)
    page.fill("#id_password", password)
    page.click("main button:has-text('Log in')")
    page.wait_for_url(f"{base}/")


def test_root_adds_user_who_sees_only_their_screens_then_is_blocked(live_server, browser):
    base = live_server.url
    UserFactory(email="root@shop.example", first_name="Grace", last_name="Hopper", groups=["root"])
    viewers = RoleFactory(name="user-viewer")
    RuleFactory(role=viewers, pattern="backoffice:users:view")
    GroupFactory(name="support", roles=[viewers])

    admin = browser.new_context().new_page()
    _log_in(admin, base, "root@shop.example", PASSWORD)
    admin.get_by_role("navigation", name="Main").get_by_role("link", name="Users").click()
    admin.get_by_role("link", name="Add user").click()
    admin.fill("#id_first_name", "Vera")
    admin.fill("#id_last_name", "Viewer")
    admin.fill("#id_email", "vera@shop.example")
    admin.get_by_label("support").check()
    admin.get_by_label("Set an initial password now").check()
    admin.fill("#id_password1", NEW_PASSWORD)
    admin.fill("#id_password2", NEW_PASSWORD)
    admin.click("main button:has-text('Add user')")
    assert "User vera@shop.example added." in admin.locator(".messages").inner_text()
    edit_url = admin.url

    vera = browser.new_context().new_page()
    _log_in(vera, base, "vera@shop.example", NEW_PASSWORD)
    nav = vera.get_by_role("navigation", name="Main")
    assert nav.get_by_role("link", name="Users").is_visible()
    assert nav.get_by_role("link", name="Groups").count() == 0
    assert nav.get_by_role("link", name="Audit log").count() == 0
    vera.goto(f"{base}/users/")
    assert vera.get_by_role("link", name="Add user").count() == 0
    assert vera.goto(f"{base}/groups/").status == 403

    admin.goto(edit_url)
    admin.get_by_role("link", name="Block…").click()  # asks first
    expect(admin.get_by_role("heading", name="Block vera@shop.example?")).to_be_visible()
    admin.click("main button:has-text('Block user')")
    assert "blocked; their sessions have ended" in admin.locator(".messages").inner_text()

    vera.goto(f"{base}/users/")
    assert vera.url.startswith(f"{base}/login/")
    vera.fill("#id_login", "vera@shop.example")
    vera.fill("#id_password", NEW_PASSWORD)
    vera.click("main button:has-text('Log in')")
    assert "not correct" in vera.locator(".alert").inner_text()
