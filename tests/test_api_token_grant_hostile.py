"""Grant types the service does not offer, at the token endpoint: the
metadata names four (authorization_code, client_credentials, password,
refresh_token); anything else, the device code grant the toolkit's server
knows too (RFC 8628, with no device endpoint here) above all, is refused as
`unsupported_grant_type` (RFC 6749 §5.2) before the toolkit looks anything
up: an anonymous request with an unknown device code was a 500."""

import pytest
from django.test import Client

from accounts.models import AuditEvent
from tests.api_support import TOKEN, basic, make_client

pytestmark = pytest.mark.django_db

DEVICE = "urn:ietf:params:oauth:grant-type:device_code"


@pytest.fixture
def anonymous():
    client = Client()
    client.raise_request_exception = False  # a 500 is an answer to assert on
    return client


@pytest.mark.parametrize("with_client", [False, True])
@pytest.mark.parametrize(
    "grant", [DEVICE, "urn:ietf:params:oauth:grant-type:jwt-bearer", "implicit", "token"]
)
def test_a_grant_type_not_offered_is_refused_as_such(anonymous, grant, with_client):
    auth = {}
    if with_client:
        client, secret = make_client(name="Sync")
        auth = {"HTTP_AUTHORIZATION": basic(client.client_id, secret)}
    response = anonymous.post(TOKEN, {"grant_type": grant, "device_code": "x"}, **auth)
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "unsupported_grant_type"
    event = AuditEvent.objects.filter(action="api.token.refused").latest("id")
    assert event.details["reason"] == "unsupported_grant_type"
