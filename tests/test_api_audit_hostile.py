"""Whom the audit trail names when a token is revoked by someone else's
write. A service account's token (client Sync) blocks bob, whose own tokens
(another client's) end with it: the row said "bob via client Sync", as if
bob had acted through a client he never used. Root replaces a client's
secret: the row named "client Sync", not root. Each row names who did it
(and the client they acted through), with the token's account as target."""

import pytest
from django.test import Client as Http

from accounts.models import AuditEvent
from tests.api_support import account_token, bearer, client_token, make_client
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_a_revocation_a_client_caused_names_the_client_and_its_account(root_user):
    bob = UserFactory(email="bob@shop.example")
    account_token(Http(), bob)  # bob's own token, of another client
    sync, secret = make_client(groups_from=root_user, scopes=["read", "write"], name="Sync")
    token = client_token(Http(), sync, secret).json()["access_token"]
    response = Http().patch(
        f"/api/v1/users/{bob.pk}",
        {"status": "blocked"},
        content_type="application/json",
        **bearer(token),
    )
    assert response.status_code == 200
    revoked = AuditEvent.objects.get(action="api.token.revoked")
    assert revoked.target_label == bob.email
    assert revoked.actor == sync.account
    assert revoked.actor_label == f"{sync.account.email} via client Sync"
    assert revoked.details["client"] == "Sync"
    assert not AuditEvent.objects.filter(actor_label=f"{bob.email} via client Sync").exists()


def test_a_revocation_a_replaced_secret_caused_names_who_replaced_it(root_user):
    from tests.support.people import browser_of

    sync, secret = make_client(groups_from=root_user, scopes=["read"], name="Sync")
    client_token(Http(), sync, secret)
    assert browser_of(root_user).post(f"/api-clients/{sync.pk}/secret/").status_code == 200
    revoked = AuditEvent.objects.get(action="api.token.revoked")
    assert revoked.actor == root_user and revoked.details["client"] == "Sync"
