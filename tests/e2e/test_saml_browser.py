"""SAML login through a real IdP's pages, in a real browser: SimpleSAMLphp
(Debian's package, served by `php -S`, tests/e2e/saml_idp.py) signs the
assertions; people log in at its own form.
"""

import pytest
import requests

from tests.e2e.saml_idp import PASSWORD, PEOPLE, SamlIdp

pytestmark = [pytest.mark.e2e]


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    """One SimpleSAMLphp for the whole module (it starts in about a second)."""
    idp = SamlIdp(tmp_path_factory.mktemp("simplesamlphp"), PEOPLE).start()
    yield idp
    idp.stop()


@pytest.fixture(autouse=True)
def _idp_said_on_failure(request, idp):
    """What SimpleSAMLphp said during a test that failed (its refusals are
    only in its log)."""
    start = len(idp.said())
    failed = request.session.testsfailed
    yield
    if request.session.testsfailed > failed:
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        reporter.write_line(f"\n--- SimpleSAMLphp said during {request.node.name}:")
        reporter.write_line(idp.said()[start:][-6000:])


def test_the_idp_answers_its_metadata_and_its_login_form(idp, page):
    answer = requests.get(idp.metadata_url, timeout=5)
    assert answer.headers["Content-Type"].startswith("application/samlmetadata+xml")
    assert f'entityID="{idp.entity_id}"' in answer.text
    assert "SingleSignOnService" in answer.text and "SingleLogoutService" in answer.text

    # Its own test page of the people's source: the form, then who logged in.
    page.goto(f"{idp.url}/module.php/core/authenticate.php?as=people")
    page.wait_for_url(idp.login_page)
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit], input[type=submit]")
    assert "Incorrect username or password" in page.content()
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_load_state()
    text = page.locator("body").inner_text()
    assert "ada@shop.example" in text and "support" in text, idp.said()[-3000:]
