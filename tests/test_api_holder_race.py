"""The secret holder's cap, read under the access lock like everything else
a write decides on (accounts.delegation: "account ∩ cap, read fresh, under
the lock"). A leaked client secret's token sends a write just as root takes
a right away from the holder: the holder's permissions were read when the
request began, before the lock, so a write that waited for root's change
still went through with the holder's old rights. Deterministic here: the
holder is demoted between the request's permission check and its write."""

import pytest
from django.test import Client as Http

from accounts.access import changed
from accounts.audit import Actor
from accounts.models import Group, Membership, User
from api import views
from tests.api_support import bearer, client_token, make_client
from tests.support.people import admin_with

pytestmark = pytest.mark.django_db


def test_a_holder_demoted_before_the_write_locks_caps_that_write(root_user, monkeypatch):
    holder = admin_with("backoffice:api-clients:*", "backoffice:users:*", name="integrators")
    client, secret = make_client(scopes=["read", "write"], name="Sync", by=Actor(user=holder))
    # Root gives the service account root (its holder caps it).
    Membership.objects.create(user=client.account, group=Group.objects.get(name="root"))
    changed(User.objects.filter(pk=client.account_id))
    token = client_token(Http(), client, secret).json()["access_token"]
    real = views.token_actor

    def then_demoted(request):
        actor = real(request)
        # Root's change commits now, while this request waits for the lock.
        rule = holder.groups.get().roles.get().rules.get(pattern="backoffice:users:*")
        rule.pattern = "backoffice:users:view"
        rule.save()
        changed(User.objects.filter(pk=holder.pk))
        return actor

    monkeypatch.setattr(views, "token_actor", then_demoted)
    response = Http().post(
        "/api/v1/users",
        {"email": "late@shop.example", "first_name": "L", "last_name": "L"},
        content_type="application/json",
        **bearer(token),
    )
    assert response.status_code == 403, response.content
    assert not User.objects.filter(email="late@shop.example").exists()
