"""A leaked client secret at the introspection endpoint (RFC 7662): a
resource server's client-credentials secret whose holder has been blocked
or deleted (the admin left; their secrets are presumed leaked) carries
nothing, as at the token endpoint: it no longer authenticates to read who
a token belongs to. The same holds when the client's own service account
is blocked. The doors: the screen, /oauth/token/, /oauth/introspect/."""

import pytest
from django.test import Client as Http

from accounts import services as account_services
from accounts.audit import Actor
from api.models import Client
from tests.api_support import TOKEN, basic, make_client
from tests.factories import PASSWORD
from tests.support.people import admin_with, browser_of

pytestmark = pytest.mark.django_db


def secret_on(page) -> str:
    return page.content.decode().split('data-testid="client-secret">')[1].split("<")[0]


def person_token(person) -> str:
    app, secret = make_client("password", scopes=["read"], name="Phone app")
    answer = Http().post(
        TOKEN,
        {"grant_type": "password", "username": person.email, "password": PASSWORD},
        HTTP_AUTHORIZATION=basic(app.client_id, secret),
    )
    return answer.json()["access_token"]


def introspect(client, secret, token):
    return Http().post(
        "/oauth/introspect/", {"token": token}, HTTP_AUTHORIZATION=basic(client.client_id, secret)
    )


@pytest.mark.parametrize("change", ["block_holder", "delete_holder", "block_service_account"])
def test_a_secret_whose_holder_is_gone_introspects_nothing(root_user, change):
    admin = admin_with("backoffice:api-clients:*", "backoffice:users:view", name="integrators")
    page = browser_of(admin).post(
        "/api-clients/add/",
        {"name": "Gateway", "grant": "client_credentials", "scopes": "introspect read"},
    )
    client, secret = Client.objects.get(name="Gateway"), secret_on(page)
    token = person_token(root_user)
    assert introspect(client, secret, token).json()["username"] == root_user.email
    by = Actor(user=root_user)
    if change == "block_holder":
        account_services.user_set_status(user=admin, active=False, by=by)
    elif change == "delete_holder":
        account_services.user_delete(user=admin, by=by)
    else:
        account_services.user_set_status(user=client.account, active=False, by=by)
    refused = introspect(client, secret, token)
    assert refused.status_code == 401, refused.content
    assert "username" not in refused.json()
