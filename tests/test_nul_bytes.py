"""A NUL byte at the anonymous doors: the OAuth endpoints and the provider's
front-channel logout. PostgreSQL refuses NUL in text, so every such value
that reached a query was a 500; each door answers 400 instead (an OAuth error
in JSON, or a page), having changed nothing, and the token endpoint audits
the refusal as it audits any other. SQLite stores NUL, so these tests only
prove the fix on PostgreSQL (the CI's second run)."""

import pytest
from django.test import Client

from accounts.models import AuditEvent
from tests.api_support import TOKEN, basic, make_client
from tests.conftest import login
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

REDIRECT = "https://app.example/cb"
VERIFIER = "v" * 50


@pytest.fixture
def anonymous():
    client = Client()
    client.raise_request_exception = False  # a 500 is an answer to assert on
    return client


def assert_refused(response):
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid_request"
    assert "NUL" in response.json()["error_description"]


@pytest.mark.parametrize(
    "where",
    ["client_id_in_body", "client_id_in_basic", "username", "password", "code", "refresh_token"],
)
def test_a_nul_byte_at_the_token_endpoint_is_a_400(anonymous, where):
    password_client, password_secret = make_client("password")
    code_client, code_secret = make_client("authorization_code", redirect_uris=[REDIRECT])
    auth = {"HTTP_AUTHORIZATION": basic(password_client.client_id, password_secret)}
    data = {"grant_type": "password", "username": "ada@shop.example", "password": "x"}
    if where == "client_id_in_body":
        auth = {}
        data = {"grant_type": "client_credentials", "client_id": "a\x00b", "client_secret": "x"}
    elif where == "client_id_in_basic":
        auth = {"HTTP_AUTHORIZATION": basic("a%00b", "x")}
        data = {"grant_type": "client_credentials"}
    elif where in ("username", "password"):
        data[where] = "ada\x00@shop.example"
    elif where == "code":
        auth = {"HTTP_AUTHORIZATION": basic(code_client.client_id, code_secret)}
        data = {
            "grant_type": "authorization_code",
            "code": "a\x00b",
            "redirect_uri": REDIRECT,
            "code_verifier": VERIFIER,
        }
    else:
        data = {"grant_type": "refresh_token", "refresh_token": "a\x00b"}
    assert_refused(anonymous.post(TOKEN, data, **auth))
    event = AuditEvent.objects.get(action="api.token.refused")
    assert event.details["reason"] == "nul_byte" and event.outcome == "failure"
    assert "\x00" not in str(event.details) + event.target_label


def test_a_nul_byte_at_revoke_and_introspect_is_a_400(anonymous):
    client, secret = make_client(scopes=["introspect"])
    auth = {"HTTP_AUTHORIZATION": basic(client.client_id, secret)}
    assert_refused(anonymous.post("/oauth/revoke/", {"token": "a\x00b"}, **auth))
    assert_refused(anonymous.post("/oauth/introspect/", {"token": "a\x00b"}, **auth))


def test_a_nul_byte_at_the_authorize_endpoint_is_a_400_page(anonymous):
    assert anonymous.get("/oauth/authorize/", {"client_id": "\x00"}).status_code == 400
    person = UserFactory(email="ada@shop.example")
    browser = Client()
    browser.raise_request_exception = False
    assert login(browser, person.email, PASSWORD).status_code == 302
    client, _ = make_client("authorization_code", redirect_uris=[REDIRECT])
    for query in (
        {"client_id": "\x00"},
        {
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": REDIRECT + "\x00",
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256",
            "state": "s\x00",
        },
    ):
        response = browser.get("/oauth/authorize/", query)
        assert response.status_code == 400, response.content[:300]
        assert "control character" in response.content.decode()
        assert "Location" not in response
