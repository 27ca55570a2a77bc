"""Real Chromium follows the redirect chain after a login's POST: a person
who approved an app before comes back to it not logged in, logs in (with and
without an MFA code) and lands at the app's redirect URI with a code. The
browser checks that chain against the login pages' CSP form-action."""

import time
from urllib.parse import parse_qs, urlsplit

import pytest
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, hotp_value
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

from api.models import Approval
from tests.api_support import make_client
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("with_mfa", [False, True])
def test_back_to_an_approved_app_through_the_login_page(live_server, page, app, with_mfa):
    base = live_server.url
    person = UserFactory(email="ada@shop.example")
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    if with_mfa:
        TOTP.activate(person, secret)
    client, client_secret = make_client(
        "authorization_code", redirect_uris=[app.callback], scopes=["read"], name="Stock app"
    )
    Approval.objects.create(user=person, client=client, scope="read")
    oauth = OAuth2Session(client.client_id, client_secret, scope="read",
                          redirect_uri=app.callback, code_challenge_method="S256")  # fmt: skip
    url, state = oauth.create_authorization_url(
        base + "/oauth/authorize/", code_verifier=generate_token(48)
    )
    blocked = []
    page.on("console", lambda m: blocked.append(m.text) if "form-action" in m.text else None)

    page.goto(url)
    page.wait_for_url(lambda u: u.startswith(f"{base}/login/?next="))
    page.fill("#id_login", person.email)
    page.fill("#id_password", PASSWORD)
    page.click("main button:has-text('Log in')")
    if with_mfa:
        page.wait_for_url(f"{base}/2fa/authenticate/")
        page.fill("input[name=code]", format_hotp_value(hotp_value(secret, int(time.time()) // 30)))
        page.click("main button[type=submit]")
    assert blocked == []
    query = parse_qs(urlsplit(app.last(page)).query)
    assert query["state"] == [state] and query["code"]
