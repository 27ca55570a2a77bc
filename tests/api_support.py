"""What the API tests share: clients made through api.services (as the
command line and the screen make them), tokens fetched over HTTP."""

from __future__ import annotations

import base64

from accounts.audit import Actor
from api import services
from tests.factories import PASSWORD

TOKEN = "/oauth/token/"


def make_client(
    grant: str = "client_credentials", *, groups_from=None, scopes=("read",), by=None, **extra
):
    """(client, secret), created by an operator unless `by` says who. A
    client-credentials client gets its own service account (with the groups
    `groups_from` has, if given)."""
    return services.client_create(
        name=extra.pop("name", f"{grant}-client"),
        grant=grant,
        groups_from=groups_from,
        scopes=list(scopes),
        by=by or Actor.system(),
        **extra,
    )


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def client_token(http, client, secret, *, scope: str | None = None):
    """The token endpoint's answer to a client-credentials request."""
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    return http.post(TOKEN, data, HTTP_AUTHORIZATION=basic(client.client_id, secret))


def service_token(http, account, *, scopes=("read", "write"), scope: str | None = None) -> str:
    """A client-credentials token of a new operator-made client whose service
    account has `account`'s groups, fetched from the token endpoint."""
    client, secret = make_client(groups_from=account, scopes=scopes)
    response = client_token(http, client, secret, scope=scope)
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def account_token(http, account, *, scopes=("read", "write"), scope: str | None = None) -> str:
    """A token acting as the person `account` itself (the password grant: no
    MFA in the test settings), fetched from the token endpoint."""
    client, secret = make_client("password", scopes=scopes, name="person-client")
    data = {"grant_type": "password", "username": account.email, "password": PASSWORD}
    if scope is not None:
        data["scope"] = scope
    response = http.post(TOKEN, data, HTTP_AUTHORIZATION=basic(client.client_id, secret))
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}
