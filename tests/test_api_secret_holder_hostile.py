"""A leaked client secret outliving its holder's blocking: the admin who
held it is blocked (they left; their secrets are presumed leaked), then
unblocked (a mistake set right, a return, or anyone with users:block). The
README promises "a holder who is blocked or deleted ends the client's tokens
and the secret mints no more until someone replaces it"; it minted again as
soon as the holder was active. The doors: the users service (as the screens
and the API call it), the token endpoint, the JSON API."""

import pytest
from django.test import Client as Http

from accounts import services as account_services
from accounts.audit import Actor
from tests.api_support import bearer, client_token, make_client
from tests.support.people import admin_with, browser_of

pytestmark = pytest.mark.django_db


def test_a_secret_stays_void_after_its_holder_is_unblocked(root_user):
    holder = admin_with("backoffice:api-clients:*", "backoffice:users:view", name="integrators")
    client, secret = make_client(scopes=["read"], name="Sync", by=Actor(user=holder))
    assert client_token(Http(), client, secret).status_code == 200
    by = Actor(user=root_user)
    account_services.user_set_status(user=holder, active=False, by=by)
    account_services.user_set_status(user=holder, active=True, by=by)
    refused = client_token(Http(), client, secret)
    assert refused.status_code in (400, 401), refused.content
    assert refused.json()["error"] == "unauthorized_client"
    page = browser_of(root_user).get(f"/api-clients/{client.pk}/")
    assert page.status_code == 200 and holder.email in page.content.decode()
    # Replacing the secret (here by the holder, active again) revives the client.
    from api import services

    fresh = services.client_rotate_secret(client=client, by=Actor(user=holder))
    token = client_token(Http(), client, fresh).json()["access_token"]
    assert Http().get("/api/v1/me", **bearer(token)).status_code == 200
