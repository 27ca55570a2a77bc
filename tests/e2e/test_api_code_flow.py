"""The authorization code flow with PKCE, its browser step in real Chromium:
an app (Authlib's OAuth2Session) sends the person to /oauth/authorize/, the
normal login page takes their password and MFA code, they approve the
client once, and the app exchanges the code (with its verifier) for tokens.
A second authorization of the same client and scopes is not asked again."""

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from allauth.mfa.totp.internal.auth import TOTP
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError

from accounts.models import AuditEvent
from api.models import Approval
from tests.api_support import make_client
from tests.factories import PASSWORD, UserFactory
from tests.support.mfa import totp

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_code_flow_with_pkce_mfa_login_and_one_approval(live_server, page, settings, app):
    settings.IAM_MFA_REQUIRED_GROUPS = ["root"]
    base = live_server.url
    person = UserFactory(email="root@shop.example", first_name="Grace", groups=["root"])
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    TOTP.activate(person, secret)
    client, client_secret = make_client(
        "authorization_code", redirect_uris=[app.callback], scopes=["read", "write"],
        name="Stock app",
    )  # fmt: skip
    oauth = OAuth2Session(client.client_id, client_secret, scope="read",
                          redirect_uri=app.callback, code_challenge_method="S256")  # fmt: skip
    verifier = generate_token(48)
    url, state = oauth.create_authorization_url(base + "/oauth/authorize/", code_verifier=verifier)

    page.goto(url)
    page.wait_for_url(lambda url: url.startswith(f"{base}/login/?next="))  # the normal login
    page.fill("#id_login", person.email)
    page.fill("#id_password", PASSWORD)
    page.click("main button:has-text('Log in')")
    page.wait_for_url(f"{base}/2fa/authenticate/")
    page.fill("input[name=code]", totp(secret))
    page.click("main button[type=submit]")
    page.wait_for_selector("text=Authorize Stock app?")
    assert page.get_by_test_id("redirect-host").inner_text() == app.callback_base[7:]
    assert "read" in page.get_by_test_id("scopes").inner_text()
    page.click("button[name=allow]")
    callback = app.last(page)
    query = parse_qs(urlsplit(callback).query)
    assert query["state"] == [state] and query["iss"] == [base]

    token = oauth.fetch_token(base + "/oauth/token/", authorization_response=callback,
                              code_verifier=verifier)  # fmt: skip
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    me = requests.get(base + "/api/v1/me", headers=auth, timeout=10).json()
    assert me["email"] == person.email and me["token"]["scope"] == "read"
    assert Approval.objects.get(user=person, client=client).scope == "read"
    event = AuditEvent.objects.get(action="api.token.issued")
    assert event.details["grant"] == "authorization_code" and event.details["client"] == "Stock app"

    # The same client and scopes again: no approval page, straight back to the app.
    again = OAuth2Session(client.client_id, client_secret, scope="read",
                          redirect_uri=app.callback, code_challenge_method="S256")  # fmt: skip
    url2, _ = again.create_authorization_url(
        base + "/oauth/authorize/", code_verifier=generate_token(48)
    )
    page.goto(url2)
    callback = app.last(page)
    assert "code=" in callback
    # A code is bound to its verifier: another one does not redeem it.
    with pytest.raises(OAuthError) as refused:
        again.fetch_token(base + "/oauth/token/", authorization_response=callback,
                          code_verifier=generate_token(48))  # fmt: skip
    assert refused.value.error == "invalid_grant"


def test_an_authorization_request_without_pkce_is_refused(live_server, page, app):
    base = live_server.url
    UserFactory(email="ada@shop.example")
    client, _ = make_client("authorization_code", redirect_uris=[app.callback])
    page.goto(f"{base}/login/")
    page.fill("#id_login", "ada@shop.example")
    page.fill("#id_password", PASSWORD)
    page.click("main button:has-text('Log in')")
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/oauth/authorize/?response_type=code&client_id={client.client_id}"
              f"&redirect_uri={app.callback}&scope=read&state=s1")  # fmt: skip
    query = parse_qs(urlsplit(app.last(page)).query)
    assert query["error"] == ["invalid_request"] and "code" not in query
