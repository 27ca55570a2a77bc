"""Property-based testing of the whole API from its own OpenAPI document:
schemathesis generates requests (valid ones, and invalid ones for negative
testing) for every operation and sends them over real HTTP to the live
server with a root token that may read and write. Every response must be no
5xx, a documented status, the documented content type and match its schema.
Writes are real (users are created, renamed, blocked): the access model's
guards (no self-block, no lock-out) must answer 4xx, never break."""

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis import checks as st_checks
from schemathesis.specs.openapi import checks as openapi_checks

from tests.api_support import make_client
from tests.factories import GroupFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

CHECKS = [
    st_checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.response_headers_conformance,
]


@pytest.fixture
def token(live_server, seed_groups):
    UserFactory(email="keeper@shop.example", groups=["root"])  # access stays repairable
    root = UserFactory(email="root@shop.example", groups=["root"])
    for n in range(3):
        UserFactory(email=f"u{n}@shop.example", groups=[GroupFactory()])
    client, secret = make_client(groups_from=root, scopes=["read", "write"])
    response = requests.post(
        live_server.url + "/oauth/token/",
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, secret),
        timeout=10,
    )
    return response.json()["access_token"]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_api_answers_every_generated_request_as_documented(live_server, token, mode):
    """Each operation of the document, `max_examples` generated requests each
    (schemathesis's own pytest loader predates pytest 9, so hypothesis drives
    the operations' strategies here)."""
    schema = schemathesis.openapi.from_url(live_server.url + "/api/v1/schema/")
    headers = {"Authorization": f"Bearer {token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 8  # me, users (list, create), user (get, patch), groups, roles, audit

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=30,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case):
            case.call_and_validate(headers=headers, checks=CHECKS)

        run()


def test_the_schema_is_served_without_a_token(live_server):
    response = requests.get(live_server.url + "/api/v1/schema/", timeout=10)
    assert response.status_code == 200
    assert b"/api/v1/users/{id}" in response.content
