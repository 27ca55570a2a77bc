"""The compiled-once account lookups (accounts.user_rows) give what the ORM
gives, on SQLite and on PostgreSQL."""

import pytest
from django.contrib.auth import get_user
from django.utils import timezone

from accounts.backends import EmailBackend
from accounts.models import User
from accounts.selectors import user_get_by_email
from tests.conftest import login
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def _fields(user):
    return {f.attname: getattr(user, f.attname) for f in User._meta.concrete_fields}


def test_same_user_as_the_orm_with_aware_datetimes(client, user):
    login(client, user.email, PASSWORD)  # sets last_login
    orm = User.objects.get(pk=user.pk)
    fast = EmailBackend().get_user(str(user.pk))
    assert _fields(fast) == _fields(orm)
    assert timezone.is_aware(fast.last_login)
    assert fast._state.adding is False and fast._state.db == "default"
    assert _fields(user_get_by_email("  ADA@Shop.Example ")) == _fields(orm)


def test_unknown_malformed_and_blocked_ids_are_no_user(user):
    blocked = UserFactory(email="blocked@shop.example", status=User.Status.BLOCKED)
    backend = EmailBackend()
    assert backend.get_user(str(user.pk + 1000)) is None
    assert backend.get_user("not a number") is None
    assert backend.get_user(None) is None
    assert backend.get_user(str(blocked.pk)) is None
    assert user_get_by_email("nobody@shop.example") is None


def test_a_page_sees_a_rename_made_after_login(client, user):
    login(client, user.email, PASSWORD)
    User.objects.filter(pk=user.pk).update(first_name="Augusta")
    assert "Augusta" in client.get("/").content.decode()
    request = client.get("/").wsgi_request
    assert get_user(request).first_name == "Augusta"
