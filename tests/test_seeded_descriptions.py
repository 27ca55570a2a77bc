"""The seeded groups' and role's descriptions read in the reader's
language (accounts.seeds); a description an admin typed reads as typed."""

import pytest
from django.utils import translation

from accounts.models import Group, Role

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("language", "root", "users", "role"),
    [
        (
            "en",
            "Full administrators.",
            "Back Office users without admin rights.",
            "Every screen and action.",
        ),
        (
            "de",
            "Administratoren mit allen Rechten.",
            "Back-Office-Benutzer ohne Administratorrechte.",
            "Jede Seite und jede Aktion.",
        ),
    ],
)
def test_seeded_descriptions_show_in_the_readers_language(admin, language, root, users, role):
    admin.defaults["HTTP_ACCEPT_LANGUAGE"] = language
    groups = admin.get("/groups/").content.decode()
    assert root in groups and users in groups
    assert role in admin.get("/roles/").content.decode()
    if language == "de":
        assert "Full administrators." not in groups
        assert "Every screen and action." not in admin.get("/roles/").content.decode()


def test_a_description_an_admin_typed_is_shown_as_typed(admin):
    Group.objects.filter(name="root").update(description="Full administrators. Handle with care.")
    admin.defaults["HTTP_ACCEPT_LANGUAGE"] = "de"
    assert "Full administrators. Handle with care." in admin.get("/groups/").content.decode()


def test_the_stored_text_stays_english():
    """Nothing rewrites the database: only reading translates."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT description FROM accounts_role WHERE name = 'administrator'")
        assert cursor.fetchone() == ("Every screen and action.",)
    with translation.override("en"):
        assert Role.objects.get(name="administrator").description == "Every screen and action."


def test_a_german_reader_saving_a_seeded_text_unchanged_stores_the_english():
    with translation.override("de"):
        root = Group.objects.get(name="root")
        assert root.description == "Administratoren mit allen Rechten."
        root.save()
    with translation.override("en"):
        assert Group.objects.get(name="root").description == "Full administrators."
