"""SCIM from a real HTTP client (requests) against the live server, while a
real browser holds the person's session: Entra ID's deprovisioning (PATCH
active "False", then DELETE) ends that session on its next page."""

import pytest
import requests

from tests.factories import PASSWORD, UserFactory
from tests.support.scim import PATCH_SCHEMA, make_token

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_deprovisioning_ends_the_live_browser_session(live_server, page):
    UserFactory(
        email="leaver@shop.example",
        first_name="Lee",
        last_name="Ver",
        groups=["backoffice-users"],
    )
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_login", "leaver@shop.example")
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_url(f"{live_server.url}/")
    assert page.get_by_test_id("email").inner_text() == "leaver@shop.example"

    scim = requests.Session()
    scim.headers.update(
        {"Authorization": f"Bearer {make_token()}", "Content-Type": "application/scim+json"}
    )
    base = f"{live_server.url}/scim/v2"
    found = scim.get(f"{base}/Users", params={"filter": 'userName eq "leaver@shop.example"'})
    assert found.status_code == 200 and found.json()["totalResults"] == 1
    pk = found.json()["Resources"][0]["id"]
    patch = {
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
    }
    response = scim.patch(f"{base}/Users/{pk}", json=patch)
    assert response.status_code == 200, response.text
    assert response.json()["active"] is False

    page.reload()
    assert page.url.startswith(f"{live_server.url}/login/")
    # Logging in again is refused while blocked.
    page.fill("#id_login", "leaver@shop.example")
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Log in')")
    assert page.url.startswith(f"{live_server.url}/login/")

    # The account has a password the client cannot vouch for: it blocked it
    # but never took it over, so it cannot delete it either (an admin can).
    refused = scim.delete(f"{base}/Users/{pk}")
    assert refused.status_code == 400 and "not provisioned by this client" in refused.text
    assert scim.get(f"{base}/Users/{pk}").json()["active"] is False
