"""An admin narrows an API client's scopes (say from "read write" to
"read", because its secret or a person's refresh token may have leaked):
the scopes are the client's ceiling, so every token of the client is bound
by them at every use, tokens issued before the change and those refreshed
from an older refresh token too (issue 20: every principal bounded at
every use). The doors: the token endpoint, the JSON API, the screen."""

import pytest
from django.test import Client as Http

from accounts.audit import Actor
from accounts.models import User
from api import services
from tests.api_support import TOKEN, basic, bearer, client_token, make_client
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

BODY = {"email": "new@shop.example", "first_name": "N", "last_name": "N"}


def post_users(token, body=BODY):
    return Http().post("/api/v1/users", body, content_type="application/json", **bearer(token))


def narrow(client, scopes=("read",)):
    services.client_update(client=client, name=client.name, scopes=list(scopes), by=Actor.system())


def test_a_person_token_and_its_refresh_are_bound_by_the_clients_scopes_now(root_user):
    app, secret = make_client("password", scopes=["read", "write"], name="Phone app")
    answer = (
        Http()
        .post(
            TOKEN,
            {"grant_type": "password", "username": root_user.email, "password": PASSWORD},
            HTTP_AUTHORIZATION=basic(app.client_id, secret),
        )
        .json()
    )
    narrow(app)
    # The access token issued before the change: no longer writes.
    assert post_users(answer["access_token"]).status_code == 403
    assert not User.objects.filter(email=BODY["email"]).exists()
    # Its refresh token gives a token that cannot write either.
    refreshed = Http().post(
        TOKEN,
        {"grant_type": "refresh_token", "refresh_token": answer["refresh_token"]},
        HTTP_AUTHORIZATION=basic(app.client_id, secret),
    )
    if refreshed.status_code == 200:
        assert post_users(refreshed.json()["access_token"]).status_code == 403
        assert not User.objects.filter(email=BODY["email"]).exists()


def test_a_client_credentials_token_is_bound_by_the_clients_scopes_now(root_user):
    client, secret = make_client(groups_from=root_user, scopes=["read", "write"], name="Sync")
    token = client_token(Http(), client, secret).json()["access_token"]
    narrow(client)
    assert post_users(token).status_code == 403
    me = Http().get("/api/v1/me", **bearer(token)).json()
    assert "backoffice:users:create" not in me["token"]["permissions"]
