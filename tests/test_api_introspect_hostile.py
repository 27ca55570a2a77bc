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


def test_introspection_reports_a_token_as_its_client_bounds_it_now(root_user):
    """A resource server reads a token's scope from introspection: after an
    admin narrows the client's scopes, or blocks whoever holds a
    client-credentials secret (its tokens carry nothing then), introspection
    says so, as the JSON API does (api.principal)."""
    gateway, gateway_secret = make_client(scopes=["introspect"], name="Gateway")
    admin = admin_with("backoffice:api-clients:*", "backoffice:users:*", name="integrators")
    sync, sync_secret = make_client(scopes=["read", "write"], name="Sync", by=Actor(user=admin))
    token = Http().post(
        TOKEN, {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic(sync.client_id, sync_secret),
    ).json()["access_token"]  # fmt: skip
    assert introspect(gateway, gateway_secret, token).json()["scope"] == "read write"
    from api import services

    services.client_update(client=sync, name="Sync", scopes=["read"], by=Actor.system())
    assert introspect(gateway, gateway_secret, token).json()["scope"] == "read"
    from accounts.models import User

    User.objects.filter(pk=admin.pk).update(status=User.Status.BLOCKED)  # a token left behind
    assert introspect(gateway, gateway_secret, token).json() == {"active": False}
