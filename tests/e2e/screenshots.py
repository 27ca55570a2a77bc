"""Screenshots of the login, users and audit pages for docs/screenshots/ (not
collected by the suite: run it by name).

    SHOTS=docs/screenshots SHOTS_TAG=after .venv/bin/python -m pytest tests/e2e/screenshots.py
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
