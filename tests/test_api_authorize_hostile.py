"""A tampered consent form at /oauth/authorize/: a logged-in person (or a
page that made their browser post) sends the approval form with a client id
that names no client. The toolkit looked the client up with .get() and the
answer was a 500 with a logged traceback; it is the 400 page, and nothing
is approved or issued."""

import pytest
from django.test import Client as Http
from oauth2_provider.models import Grant

from api.models import Approval
from tests.conftest import login
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


@pytest.mark.parametrize("client_id", ["nope", "x" * 300, "\u00e9"])
@pytest.mark.parametrize(
    "redirect_uri", ["https://app.example/cb", "http://127.0.0.1:9999/cb", "http://[::1/"]
)
def test_a_consent_form_for_no_client_is_a_400(root_user, client_id, redirect_uri):
    http = Http(raise_request_exception=False)
    assert login(http, root_user.email, PASSWORD).status_code == 302
    response = http.post(
        "/oauth/authorize/",
        {
            "client_id": client_id,
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "scope": "read",
            "code_challenge": CHALLENGE,
            "code_challenge_method": "S256",
            "state": "s",
            "allow": "Allow",
        },
    )
    assert response.status_code == 400, response.content[:300]
    assert not Grant.objects.exists() and not Approval.objects.exists()
