"""Screenshots of the login, users and audit pages for docs/screenshots/ (not
collected by the suite: run it by name).

    SHOTS=docs/screenshots SHOTS_TAG=after .venv/bin/python -m pytest tests/e2e/screenshots.py

`::test_shots_first_admin` alone gives the issue-21 screens (audit, user,
role, 2fa, api-secret; audit and 2fa in German too).
"""

import os

import pytest

from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
OUT = os.environ.get("SHOTS", "/tmp/shots")
TAG = os.environ.get("SHOTS_TAG", "before")


def test_shots(live_server, browser):
    base = live_server.url
    UserFactory(email="root@shop.example", first_name="Grace", last_name="Hopper", groups=["root"])
    for first, last in [("Ada", "Lovelace"), ("Alan", "Turing"), ("Edsger", "Dijkstra")]:
        email = f"{first.lower()}@shop.example"
        UserFactory(email=email, first_name=first, last_name=last, groups=["backoffice-users"])
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    page.goto(f"{base}/login/")
    page.fill("#id_login", "root@shop.example")
    page.fill("#id_password", "wrong")
    page.click("main button:has-text('Log in')")
    page.screenshot(path=f"{OUT}/login-{TAG}.png", full_page=True)
    page.fill("#id_login", "root@shop.example")
    page.fill("#id_password", PASSWORD)
    page.click("main button:has-text('Log in')")
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/users/")
    page.screenshot(path=f"{OUT}/users-{TAG}.png", full_page=True)
    # an edit to have a readable detail in the audit log
    page.goto(f"{base}/users/")
    page.click("a:has-text('ada@shop.example')")
    page.fill("#id_first_name", "Augusta Ada")
    page.click("main button:has-text('Save')")
    page.goto(f"{base}/audit/")
    page.screenshot(path=f"{OUT}/audit-{TAG}.png", full_page=True)


def test_shots_first_admin(live_server, browser, settings):
    """The screens issue 21 reshapes, on the first admin's path (1,280 px):
    audit log, user page, role editor, /2fa/, an API client's secret; the
    audit log and /2fa/ in German too."""
    from accounts.models import User
    from tests.e2e import first_admin as walk

    settings.IAM_MFA_REQUIRED_GROUPS = ["root"]
    base = live_server.url.replace("127.0.0.1", "localhost")
    UserFactory(email=walk.ADMIN_EMAIL, first_name="Demo", last_name="Admin", groups=["root"])
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    walk.virtual_key(page)
    walk.log_in(page, base, walk.ADMIN_EMAIL, PASSWORD)
    walk.set_up_app(page, base)
    walk.add_key(page, base)
    page.goto(f"{base}/2fa/")
    page.screenshot(path=f"{OUT}/2fa-{TAG}.png", full_page=True)
    ada = walk.create_user(page, base, "ada.lovelace@shop.example", "Ada", "Lovelace")
    group = walk.create_group(page, base, "customer-support", "First-line support, all shops")
    role = walk.create_role(
        page,
        base,
        "support-agent",
        "Reads accounts and their history, resets passwords",
        [
            "allow backoffice:users:view",
            "allow backoffice:users:reset-password",
            "allow backoffice:audit:view",
            "deny backoffice:users:delete",
        ],
    )
    walk.give_role_to_group(page, base, role, group)
    walk.give_group_to_user(page, base, group, ada)
    page.goto(f"{base}/roles/{role.pk}/")
    page.screenshot(path=f"{OUT}/role-{TAG}.png", full_page=True)
    walk.block(page, base, ada)
    # Before issue 21: the edit form (user) and the detail page (user-view);
    # after: the tabs (user = details, then security and events).
    for url in walk.user_tabs(page, base, ada):
        tab = url.rstrip("/").rsplit("/", 1)[-1]
        name = "user" if tab.isdigit() else f"user-{tab}"
        page.goto(url)
        page.screenshot(path=f"{OUT}/{name}-{TAG}.png", full_page=True)
    walk.create_api_client(page, base, "Warehouse sync")
    page.screenshot(path=f"{OUT}/api-secret-{TAG}.png", full_page=True)
    page.goto(f"{base}/audit/")
    page.screenshot(path=f"{OUT}/audit-{TAG}.png", full_page=True)
    User.objects.filter(email=walk.ADMIN_EMAIL).update(language="de")
    page.goto(f"{base}/audit/")
    page.screenshot(path=f"{OUT}/audit-de-{TAG}.png", full_page=True)
    page.goto(f"{base}/2fa/")
    page.screenshot(path=f"{OUT}/2fa-de-{TAG}.png", full_page=True)
    page.goto(f"{base}/roles/{role.pk}/")
    page.screenshot(path=f"{OUT}/role-de-{TAG}.png", full_page=True)
