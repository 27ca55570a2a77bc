"""A change of address in a real browser: an admin asks for a new address
for their own account, the page says a link was sent and shows the waiting
address; the link, opened in another browser, shows what it changes and
changes it on a click; the admin's own session goes on."""

import re

import pytest
from django.core import mail

from accounts.models import User
from tests.e2e.axe import Audit
from tests.factories import PASSWORD, GroupFactory, RoleFactory, RuleFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_own_address_changes_only_through_the_mailed_link(live_server, browser):
    base = live_server.url
    role = RoleFactory()
    for pattern in ("backoffice:users:view", "backoffice:users:edit"):
        RuleFactory(role=role, pattern=pattern)
    me = UserFactory(email="mallory@shop.example", groups=[GroupFactory(roles=[role])])

    admin = browser.new_context().new_page()
    admin.goto(f"{base}/login/")
    admin.fill("#id_login", me.email)
    admin.fill("#id_password", PASSWORD)
    admin.click("main button:has-text('Log in')")
    admin.wait_for_url(f"{base}/")
    admin.goto(f"{base}/users/{me.pk}/")
    admin.fill("#id_email", "mallory.m@shop.example")
    admin.click("main button:has-text('Save')")
    messages = admin.locator(".messages").inner_text()
    assert "A confirmation link was sent to mallory.m@shop.example" in messages
    assert "mallory.m@shop.example" in admin.get_by_test_id("pending-email").inner_text()
    assert User.objects.get(pk=me.pk).email == "mallory@shop.example"

    (message,) = [m for m in mail.outbox if m.to == ["mallory.m@shop.example"]]
    link = re.search(r"http://\S+/email/confirm/\S+/", message.body)[0]
    assert link.startswith(base)  # the site the request came from
    holder = browser.new_context().new_page()
    holder.goto(link)
    assert holder.url == f"{base}/email/confirm/"  # the token left the address bar
    assert "mallory@shop.example" in holder.locator("main").inner_text()
    axe = Audit(holder)
    axe.check("confirm the new address")
    holder.click("main button:has-text('Confirm the new address')")
    assert (
        "mallory.m@shop.example is now the address"
        in holder.get_by_test_id("email-change-done").inner_text()
    )
    axe.check("address confirmed")
    axe.assert_clean()
    assert User.objects.get(pk=me.pk).email == "mallory.m@shop.example"

    admin.goto(f"{base}/account/")
    assert "mallory.m@shop.example" in admin.locator("main").inner_text()
    assert admin.get_by_test_id("pending-email").count() == 0
