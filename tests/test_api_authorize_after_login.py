"""Coming back to an OAuth client one approved before, not logged in: the
authorization request sends the browser to the login page; the login's POST
is answered with a redirect to the authorization request, which is answered
with a redirect to the client's redirect URI (with a code, or an error).
Browsers check the whole chain of redirects after a form's POST against the
page's CSP `form-action`: the login pages (password and MFA) must allow
exactly the client's registered redirect URI's origin, and nothing more."""

import base64
import hashlib
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, hotp_value

from api.models import Approval, Client
from tests.api_support import make_client
from tests.conftest import login
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

APP = "https://stock.example"
CALLBACK = f"{APP}/oauth/callback"


def form_action(response) -> list[str]:
    policy = response["Content-Security-Policy"]
    directive = next(d.strip() for d in policy.split(";") if d.strip().startswith("form-action"))
    return directive.split()[1:]


def authorize_url(client_id, *, redirect_uri=CALLBACK, scope="read", **extra) -> str:
    verifier = "v" * 64
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    query = {
        "response_type": "code",
        "client_id": client_id,
        "scope": scope,
        "state": "s1",
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
        **extra,
    }
    if redirect_uri is not None:
        query["redirect_uri"] = redirect_uri
    return "/oauth/authorize/?" + urlencode(query)


@pytest.fixture
def app_client():
    client, _ = make_client(
        "authorization_code", redirect_uris=[CALLBACK], scopes=["read", "write"], name="Stock"
    )
    return client


@pytest.fixture
def ada(app_client):
    person = UserFactory(email="ada@shop.example")
    Approval.objects.create(user=person, client=app_client, scope="read")
    return person


def to_login(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")
    return response["Location"]


def test_the_login_page_allows_the_approved_clients_origin_and_the_chain_ends_there(
    client, app_client, ada
):
    url = authorize_url(app_client.client_id)
    page = client.get(to_login(client, url))
    assert form_action(page) == ["'self'", APP]
    response = client.post("/login/", {"login": ada.email, "password": PASSWORD, "next": url})
    assert response.status_code == 302 and response["Location"] == url
    back = client.get(url)
    assert back.status_code == 302 and back["Location"].startswith(CALLBACK + "?")
    assert "code" in parse_qs(urlsplit(back["Location"]).query)


def test_an_error_sent_back_after_login_goes_to_the_same_origin(client, app_client, ada):
    url = authorize_url(app_client.client_id, scope="read nonsense")
    assert form_action(client.get(to_login(client, url))) == ["'self'", APP]
    login(client, ada.email, PASSWORD)
    back = client.get(url)
    assert back.status_code == 302 and back["Location"].startswith(CALLBACK + "?")
    assert parse_qs(urlsplit(back["Location"]).query)["error"] == ["invalid_scope"]


def test_a_failed_password_keeps_the_origin(client, app_client, ada):
    url = authorize_url(app_client.client_id)
    page = client.post("/login/", {"login": ada.email, "password": "wrong", "next": url})
    assert page.status_code == 200 and form_action(page) == ["'self'", APP]


def test_without_redirect_uri_the_registered_one(client, app_client, ada):
    url = authorize_url(app_client.client_id, redirect_uri=None)
    assert form_action(client.get(to_login(client, url))) == ["'self'", APP]


def test_a_loopback_client(client):
    native, _ = make_client(
        "authorization_code", redirect_uris=["http://127.0.0.1:8765/cb"], name="CLI"
    )
    url = authorize_url(native.client_id, redirect_uri="http://127.0.0.1:8765/cb")
    assert form_action(client.get(to_login(client, url))) == ["'self'", "http://127.0.0.1:8765"]


@pytest.mark.parametrize(
    "next_url",
    [
        # a redirect URI the client did not register
        lambda c: authorize_url(c.client_id, redirect_uri="https://evil.example/cb"),
        # the registered one twice (the toolkit refuses a repeated parameter)
        lambda c: authorize_url(c.client_id) + "&" + urlencode({"redirect_uri": CALLBACK}),
        # a client that does not exist, or a NUL byte where its id goes
        lambda c: authorize_url("no-such-client"),
        lambda c: authorize_url("\x00"),
        # another page of ours, naming the same redirect URI
        lambda c: "/users/?" + urlencode({"client_id": c.client_id, "redirect_uri": CALLBACK}),
        # another site's authorize endpoint
        lambda c: "https://evil.example" + authorize_url(c.client_id),
    ],
)
def test_nothing_else_is_allowed(client, app_client, next_url):
    page = client.get("/login/?" + urlencode({"next": next_url(app_client)}))
    assert page.status_code == 200
    assert form_action(page) == ["'self'"]


def test_a_client_credentials_client_is_no_way_out(client, user):
    """Even one with a redirect URI left in its row: only a client that may
    be sent there (an authorization-code client) opens an origin."""
    machine, _ = make_client("client_credentials", groups_from=user)
    Client.objects.filter(pk=machine.pk).update(redirect_uris=CALLBACK)
    page = client.get("/login/?" + urlencode({"next": authorize_url(machine.client_id)}))
    assert form_action(page) == ["'self'"]


def test_the_mfa_step_allows_it_too(client, app_client, ada):
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    TOTP.activate(ada, secret)
    url = authorize_url(app_client.client_id)
    response = client.post("/login/", {"login": ada.email, "password": PASSWORD, "next": url})
    assert response.status_code == 302 and response["Location"] == "/2fa/authenticate/"
    page = client.get("/2fa/authenticate/")
    assert page.status_code == 200 and form_action(page) == ["'self'", APP]
    code = format_hotp_value(hotp_value(secret, int(time.time()) // 30))
    done = client.post("/2fa/authenticate/", {"code": code})
    assert done.status_code == 302 and done["Location"] == url
    assert client.get(url)["Location"].startswith(CALLBACK + "?")


def test_the_mfa_step_of_an_ordinary_login_allows_only_self(client, ada):
    TOTP.activate(ada, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    client.post("/login/", {"login": ada.email, "password": PASSWORD, "next": "/users/"})
    assert form_action(client.get("/2fa/authenticate/")) == ["'self'"]


def test_next_to_the_provider_buttons_origins(client, app_client, settings):
    """The "Log in with …" buttons keep their provider's origin beside it."""
    settings.IAM_SSO_PROVIDERS = {
        "okta": {"id": "okta", "kind": "oidc", "issuer": "https://idp.example/realm",
                 "client_id": "backoffice"},
    }  # fmt: skip
    page = client.get("/login/?" + urlencode({"next": authorize_url(app_client.client_id)}))
    assert form_action(page) == ["'self'", "https://idp.example", APP]
