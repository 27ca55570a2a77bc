"""The user page's Groups tab with a time-bound membership, an eligible-only
group and a grant waiting for a second administrator, in a real browser at
1,280 px, in English and in German: the admin gives the end through the
form, the tab says it, axe finds nothing and the tables fit."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AccessRequest, Group, Membership
from tests.e2e.axe import Audit
from tests.e2e.checks import no_english_on_german
from tests.e2e.first_admin import check_option, log_in, submit
from tests.e2e.fit import misfits
from tests.factories import PASSWORD, GroupFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WORDS = {
    "en-US": {
        "ends": "ends {when}",
        "waits": "Group Zahlungsfreigabe-Mitteleuropa waits for a second administrator's approval.",
        "pending": "waiting for a second administrator's approval",
        "eligible": "eligible",
    },
    "de-DE": {
        "ends": "endet {when}",
        "waits": "Gruppe Zahlungsfreigabe-Mitteleuropa wartet auf die Zustimmung eines zweiten "
        "Administrators.",
        "pending": "wartet auf die Zustimmung eines zweiten Administrators",
        "eligible": "berechtigt",
    },
}


@pytest.mark.parametrize("locale", ["en-US", "de-DE"])
def test_groups_tab_with_an_end_and_a_pending_grant(live_server, browser, locale):
    root = UserFactory(email="root.operator@shop.example", groups=["root"])
    target = UserFactory(
        email="margarete.schneider-hoffmann@personalverwaltung.example",
        first_name="Margarete Sophie Charlotte",
        last_name="Schneider-Hoffmann",
    )
    accounting = GroupFactory(name="Buchhaltung-und-Rechnungswesen-Nord")
    payments = GroupFactory(name="Zahlungsfreigabe-Mitteleuropa", grant_approval=True)
    emergency = GroupFactory(name="Notfallzugang-Produktion", eligible_only=True)
    Membership.objects.create(user=target, group=emergency)
    end = (timezone.now() + timedelta(days=7)).replace(second=0, microsecond=0)
    words = WORDS[locale]
    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        log_in(page, live_server.url, root.email, PASSWORD)
        checks = Audit(page)
        url = f"{live_server.url}/users/{target.pk}/groups/"
        page.goto(url)
        check_option(page, accounting.name)
        page.fill(f"#id_end-{accounting.pk}", timezone.localtime(end).strftime("%Y-%m-%dT%H:%M"))
        check_option(page, payments.name)
        submit(page, f"#id_end-{accounting.pk}")
        page.wait_for_url(url)
        text = " ".join(page.locator("main").inner_text().split())
        assert words["waits"] in text
        assert words["ends"].format(when=timezone.localtime(end).strftime("%Y-%m-%d %H:%M")) in text
        assert words["pending"] in text and words["eligible"] in text
        assert Membership.objects.get(user=target, group=accounting).ends_at == end
        assert not Membership.objects.filter(user=target, group=payments).exists()
        assert AccessRequest.objects.filter(user=target, group=payments, status="pending").exists()
        checks.check(f"user groups {locale}")
        assert misfits(page) == [], locale
        if locale == "de-DE":
            assert no_english_on_german(page) == []
        checks.visit(f"{live_server.url}/groups/{emergency.pk}/", f"group {locale}")
        assert misfits(page) == [], locale
        checks.visit(f"{live_server.url}/users/?ending=on", f"users ending {locale}")
        assert target.email in page.locator("main table").inner_text()
        checks.assert_clean()
        assert Group.objects.get(pk=payments.pk).grant_approval
    finally:
        context.close()
