"""A SCIM client as Entra ID is one: tokens, request bodies, the error shape."""

import json
from io import StringIO

from django.core.management import call_command

SCIM = "application/scim+json"


USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


def make_token(name="entra", group_map=None, ceiling=()):
    out = StringIO()
    args = ["scimtoken", "create", "--name", name]
    if group_map is not None:
        args += ["--group-map", json.dumps(group_map)]
    for group in ceiling:
        args += ["--max-group", group]
    call_command(*args, stdout=out)
    return out.getvalue().strip().splitlines()[-1]


class Scim:
    """A SCIM client over the test Client, as an IdP talks."""

    def __init__(self, client, token):
        self.client, self.token = client, token

    def _headers(self):
        return {"HTTP_AUTHORIZATION": f"Bearer {self.token}"}

    def get(self, path, **params):
        return self.client.get(f"/scim/v2/{path}", params, **self._headers())

    def send(self, method, path, body):
        data = body if isinstance(body, (str, bytes)) else json.dumps(body)
        call = getattr(self.client, method.lower())
        return call(f"/scim/v2/{path}", data=data, content_type=SCIM, **self._headers())

    def post(self, path, body):
        return self.send("POST", path, body)

    def patch(self, path, body):
        return self.send("PATCH", path, body)

    def put(self, path, body):
        return self.send("PUT", path, body)

    def delete(self, path):
        return self.client.delete(f"/scim/v2/{path}", **self._headers())


def entra_user(email="jo@shop.example", external_id="e-1", **extra):
    """What Entra ID POSTs to /Users (its default attribute mapping)."""
    body = {
        "schemas": [USER_SCHEMA, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": external_id,
        "userName": email,
        "active": True,
        "displayName": "Jo Bloggs",
        "emails": [{"primary": True, "type": "work", "value": email}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Jo Bloggs", "familyName": "Bloggs", "givenName": "Jo"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Sales"},
    }
    body.update(extra)
    return body


def entra_patch(*operations):
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


def assert_error(response, status, scim_type=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["schemas"] == [ERROR_SCHEMA]
    assert body["status"] == str(status)
    if scim_type:
        assert body.get("scimType") == scim_type
    return body


def entra_group(name, members=(), external_id="g-1"):
    return {
        "schemas": [GROUP_SCHEMA],
        "externalId": external_id,
        "displayName": name,
        "members": [{"value": str(m)} for m in members],
        "meta": {"resourceType": "Group"},
    }
