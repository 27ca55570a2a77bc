"""Invariants of the account record that the database itself keeps."""

import pytest
from django.db import IntegrityError, connection

from accounts.models import Group, User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_no_username_field_and_email_is_the_login():
    assert User.USERNAME_FIELD == "email"
    assert not any(f.name == "username" for f in User._meta.get_fields())


def test_email_stored_normalised():
    user = User.objects.create_user(" Mixed.Case@Shop.EXAMPLE ", first_name="A", last_name="B")
    assert user.email == "mixed.case@shop.example"


def test_email_unique_whatever_the_case_even_past_the_orm():
    UserFactory(email="one@shop.example")
    with pytest.raises(IntegrityError), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO accounts_user (email, first_name, last_name, status, password, "
            "created_at, updated_at) VALUES (%s, 'A', 'B', 'active', '!', %s, %s)",
            ["ONE@shop.example", "2026-01-01 00:00:00+00", "2026-01-01 00:00:00+00"],
        )


def test_status_drives_is_active_and_timestamps_are_kept():
    user = UserFactory()
    assert user.is_active and user.created_at and user.updated_at
    user.status = User.Status.BLOCKED
    assert not user.is_active


def test_seeded_groups():
    root = Group.objects.get(name="root")
    rules = [(r.effect, r.pattern) for role in root.roles.all() for r in role.rules.all()]
    assert rules == [("allow", "*:*:*")]
    assert not Group.objects.get(name="backoffice-users").roles.exists()
