"""A change of address asked through a leaked client secret, confirmed after
the leak was found. The attacker's token (a service account, capped by the
admin who holds the secret) asks to give a low account the attacker's own
address; the link goes to the attacker's mailbox. The admin is blocked
(their secrets void) before the attacker follows it. The confirmation
re-checks the asker's rights: for a service account those are capped by its
client's secret holder now, as every other write of the client is, so the
change no longer takes effect. It did: the service account's own groups
were read uncapped. The doors: the JSON API, the mailed link."""

import re

import pytest
from django.core import mail
from django.test import Client as Http

from accounts import services as account_services
from accounts.access import changed
from accounts.audit import Actor
from accounts.models import Group, Membership, User
from tests.api_support import bearer, client_token, make_client
from tests.factories import UserFactory
from tests.support.people import admin_with

pytestmark = pytest.mark.django_db

LINK = re.compile(r"http://testserver(/email/confirm/[^/\s]+/)")
ATTACKER = "mallory@evil.example"


def test_a_change_asked_with_a_secret_voided_since_does_not_take_effect(root_user):
    holder = admin_with(
        "backoffice:api-clients:*", "backoffice:users:view", "backoffice:users:edit",
        name="integrators",
    )  # fmt: skip
    client, secret = make_client(scopes=["read", "write"], name="Sync", by=Actor(user=holder))
    Membership.objects.create(user=client.account, group=Group.objects.get(name="integrators"))
    changed(User.objects.filter(pk=client.account_id))
    victim = UserFactory(email="clerk@shop.example")
    token = client_token(Http(), client, secret).json()["access_token"]
    asked = Http().patch(
        f"/api/v1/users/{victim.pk}",
        {"email": ATTACKER},
        content_type="application/json",
        **bearer(token),
    )
    assert asked.status_code == 200, asked.content
    account_services.user_set_status(user=holder, active=False, by=Actor(user=root_user))
    (message,) = [m for m in mail.outbox if m.to == [ATTACKER]]
    link = LINK.search(message.body)[1]
    http = Http()
    assert http.get(link).status_code == 302
    assert http.post("/email/confirm/").status_code < 500
    assert User.objects.get(pk=victim.pk).email == "clerk@shop.example"
