"""Access reviews in a real browser, the auditor's walk of README "Access
reviews": root starts a quarterly self-review of root, a member decides
their own membership from the dashboard's "My reviews", and the review's
page shows the progress and offers the report. In English and German;
axe, layout and table fit checked on each page."""

import pytest

from reviews.models import AccessReview
from tests.e2e.checks import Findings
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _log_in(page, base, email):
    page.goto(f"{base}/login/")
    page.fill("#id_login", email)
    page.fill("#id_password", PASSWORD)
    page.click("main button:has-text('Log in')")
    page.wait_for_url(f"{base}/")


@pytest.mark.parametrize("language", ["en", "de"])
def test_a_quarterly_self_review_of_root(live_server, browser, settings, language):
    settings.IAM_MFA_REQUIRED_GROUPS = []
    base = live_server.url
    german = language == "de"
    UserFactory(email="auditor@shop.example", groups=["root"], language=language)
    UserFactory(email="ada@shop.example", groups=["root"], language=language)
    first = browser.new_context(viewport={"width": 1280, "height": 900})
    second = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = first.new_page()
        page.set_default_timeout(15_000)
        found = Findings(page, german)
        _log_in(page, base, "auditor@shop.example")
        page.click("header a[href='/reviews/']")
        page.wait_for_url(f"{base}/reviews/")
        found.check("reviews, empty")
        page.click("main a[href='/reviews/new/']")
        page.wait_for_url(f"{base}/reviews/new/")
        found.check("start")
        page.fill("#id_name", "Q4 root")
        page.select_option("#id_group", label="root")
        page.check("#id_reviewer_mode_1")  # self-review
        page.select_option("#id_recurrence", value="quarterly")
        page.fill("#id_duration_days", "14")
        page.select_option("#id_default", value="recommendation")
        with page.expect_navigation():
            page.click("main button[type=submit]")
        review = AccessReview.objects.get()
        assert page.url == f"{base}/reviews/{review.pk}/"
        found.check("review")

        other = second.new_page()
        other.set_default_timeout(15_000)
        found_other = Findings(other, german)
        _log_in(other, base, "ada@shop.example")
        other.click("[data-testid=reviews-open] a")
        other.wait_for_url(f"{base}/reviews/mine/")
        found_other.check("my reviews")
        other.click(f"main a[href='/reviews/{review.pk}/decide/']")
        other.wait_for_url(f"{base}/reviews/{review.pk}/decide/")
        found_other.check("decide")
        other.check("main input[value=approve]")
        other.fill("main input[name=justification]", "On call this quarter")
        with other.expect_navigation():
            other.click("main form.decision button[type=submit]")
        found_other.check("decide, after")

        page.goto(f"{base}/reviews/{review.pk}/")
        assert "1" in page.locator("[data-testid=progress]").inner_text()
        found.check("review, decided")
        page.goto(f"{base}/reviews/")
        found.check("reviews")
        assert page.locator(f"[data-testid=review-{review.pk}]").count() == 1
        assert review.items.get(user_email="ada@shop.example").decision == "approve"
        assert found.report() == "" and found_other.report() == "", (
            found.report() + "\n" + found_other.report()
        )
    finally:
        first.close()
        second.close()
