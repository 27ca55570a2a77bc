"""The upgrade (api 0003) and the clients made before it, under the old
rule (a client-credentials client acted as the person it was bound to).

The issue's attack had already happened on some installs: a narrow admin
(api-clients:* + users:view) made a client bound to an empty account and
kept its secret; root later made that account root. The migration must not
carry that over: the holder of a secret is whoever saw it (who created the
client, or who last replaced its secret, as the audit trail shows), never
the account it was bound to, who may never have seen it. The doors: the
real `manage.py migrate`, the token endpoint, the JSON API."""

import pytest
from django.core.management import call_command
from django.test import Client as Http

from accounts.audit import Actor, AuditAction, audit
from api.models import Client
from tests.api_support import bearer, client_token
from tests.factories import UserFactory
from tests.support.people import admin_with

pytestmark = pytest.mark.django_db(transaction=True)

ROOT_BODY = {"email": "mallory@shop.example", "first_name": "M", "last_name": "M",
             "groups": ["root"]}  # fmt: skip
SECRET = "s3cret-" * 6


def legacy_client(account, *, created_by=None, label="") -> Client:
    client = Client(name="Legacy", client_type="confidential",
                    authorization_grant_type=Client.GRANT_CLIENT_CREDENTIALS,
                    account=account, scope="read write", client_secret=SECRET,
                    hash_client_secret=True, created_by=created_by,
                    created_by_label=label or (created_by.email if created_by else ""))  # fmt: skip
    client.save()
    return client


def upgrade(client) -> Client:
    call_command("migrate", "api", verbosity=0)
    client.refresh_from_db()
    return client


def post_users(client):
    answer = client_token(Http(), client, SECRET)
    assert answer.status_code == 200, answer.content
    token = answer.json()["access_token"]
    return Http().post("/api/v1/users", ROOT_BODY, content_type="application/json", **bearer(token))


@pytest.fixture
def before(seed_groups):
    call_command("migrate", "api", "0002", verbosity=0)  # before the data migration
    return UserFactory(email="root@shop.example", groups=["root"])


def test_the_creator_holds_the_secret_not_the_promoted_account(before):
    narrow = admin_with("backoffice:api-clients:*", "backoffice:users:view", name="integrators")
    promoted = UserFactory(email="new-it-admin@shop.example", groups=["root"])
    client = upgrade(legacy_client(promoted, created_by=narrow))
    assert client.secret_holder == narrow and not client.secret_by_operator
    assert post_users(client).status_code == 403  # capped by the narrow admin


def test_whoever_last_replaced_the_secret_holds_it(before):
    narrow = admin_with("backoffice:api-clients:*", "backoffice:users:view", name="integrators")
    client = legacy_client(
        UserFactory(email="ops@shop.example", groups=["root"]), created_by=before
    )
    audit(AuditAction.API_CLIENT_SECRET_ROTATED, by=Actor(user=narrow), target=client)
    client = upgrade(client)
    assert client.secret_holder == narrow
    assert post_users(client).status_code == 403


def test_a_client_the_operator_made_stays_the_operators(before):
    client = upgrade(legacy_client(before, label="cli"))
    assert client.secret_by_operator and client.secret_holder is None
    assert post_users(client).status_code == 201


def test_a_creator_deleted_since_leaves_the_secret_carrying_nothing(before):
    client = upgrade(legacy_client(before, label="gone@shop.example"))
    assert client.secret_holder is None and not client.secret_by_operator
    refused = client_token(Http(), client, SECRET)
    assert refused.json()["error"] == "unauthorized_client"
