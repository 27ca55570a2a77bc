"""What the API tests share: clients made through api.services (as the
command line and the screen make them), tokens fetched over HTTP."""

from __future__ import annotations

import base64

from accounts.audit import Actor
from api import services

TOKEN = "/oauth/token/"


def make_client(grant: str = "client_credentials", *, account=None, scopes=("read",), **extra):
    """(client, secret), created by an operator."""
    return services.client_create(
        name=extra.pop("name", f"{grant}-client"),
        grant=grant,
        account=account,
        scopes=list(scopes),
        by=Actor.system(),
        **extra,
    )


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def service_token(http, account, *, scopes=("read", "write"), scope: str | None = None) -> str:
    """A client-credentials token acting as `account`, fetched from the token
    endpoint with Django's test client (`http`)."""
    client, secret = make_client(account=account, scopes=scopes)
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    response = http.post(TOKEN, data, HTTP_AUTHORIZATION=basic(client.client_id, secret))
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}
