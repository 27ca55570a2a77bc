"""JSON API, client-credentials token: a change of address it asks for is
confirmed within the same cap as the request.

A client's token acts as its service account capped by what the secret's
holder holds at the time of use. The mailed link is followed later; the
confirmation checks that "the person who asked" may still make the change,
but it rebuilds the asker from the service account alone, without the cap:
a holder who is blocked meanwhile (their secret "carries nothing") still
gets the address they asked for through the client onto the account."""

import json
import re

import pytest
from django.core import mail
from django.test import Client as Http

from accounts import services as account_services
from accounts.audit import Actor
from accounts.models import User
from api import services as api_services
from tests.api_support import bearer, client_token
from tests.factories import UserFactory
from tests.support.people import admin_with

pytestmark = pytest.mark.django_db

LINK = re.compile(r"http://testserver(/email/confirm/[^/\s]+/)")


@pytest.mark.parametrize("holder_blocked", [True, False])
def test_a_blocked_holders_address_change_through_the_client_is_not_applied(
    root_user, holder_blocked
):
    holder = admin_with(
        "backoffice:api-clients:*", "backoffice:users:view", "backoffice:users:edit",
        name="integrators",
    )  # fmt: skip
    client, secret = api_services.client_create(
        name="Sync", grant="client_credentials", groups_from=holder,
        scopes=["read", "write"], by=Actor(user=holder),
    )  # fmt: skip
    token = client_token(Http(), client, secret).json()["access_token"]
    colleague = UserFactory(email="colleague@shop.example")
    asked = Http().patch(
        f"/api/v1/users/{colleague.pk}",
        json.dumps({"email": "mallory@evil.example"}),
        content_type="application/json",
        **bearer(token),
    )
    assert asked.status_code == 200, asked.content
    (message,) = [m for m in mail.outbox if m.to == ["mallory@evil.example"]]
    link = LINK.search(message.body)[1]

    if holder_blocked:
        # The holder leaves: blocked. Their secret carries nothing any more.
        account_services.user_set_status(user=holder, active=False, by=Actor(user=root_user))

    browser = Http()
    browser.get(link)
    browser.post("/email/confirm/")
    expected = "colleague@shop.example" if holder_blocked else "mallory@evil.example"
    assert User.objects.get(pk=colleague.pk).email == expected
