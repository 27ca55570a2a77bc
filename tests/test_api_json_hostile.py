"""Hostile JSON bodies at /api/v1/: a body nested a few thousand levels deep
(12 KB) made Python's JSON decoder give up with a RecursionError, which the
parser did not catch: a 500 and a logged traceback for anyone, with no token
(the bearer check reads the body first). It is a 400, as malformed JSON is,
and as SCIM answers it."""

import pytest
from django.test import Client

from tests.api_support import bearer, client_token, make_client

pytestmark = pytest.mark.django_db

DEEP = b'{"a":' * 3000 + b"1" + b"}" * 3000
DEEP_LIST = b"[" * 3000 + b"]" * 3000


@pytest.fixture
def anonymous():
    client = Client()
    client.raise_request_exception = False  # a 500 is an answer to assert on
    return client


@pytest.mark.parametrize("raw", [DEEP, DEEP_LIST])
@pytest.mark.parametrize("with_token", [False, True])
@pytest.mark.parametrize("method,path", [("POST", "/api/v1/users"), ("PATCH", "/api/v1/users/1")])
def test_a_deeply_nested_body_is_a_400(anonymous, root_user, raw, with_token, method, path):
    auth = {}
    if with_token:
        client, secret = make_client(groups_from=root_user, scopes=["read", "write"])
        auth = bearer(client_token(Client(), client, secret).json()["access_token"])
    response = anonymous.generic(method, path, raw, content_type="application/json", **auth)
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid_request"
