"""The descriptions the seed migration (0002_seed_groups) wrote, read in the
reader's language.

They are stored in English like any admin-typed text, so no migration
rewrites anything: `SeededDescription` translates a stored description on
load only when it is, exactly, one of these texts. Text an admin typed
(or changed) is shown as typed."""

from django.db import models
from django.utils.translation import gettext, gettext_noop

SEEDED = frozenset(
    {
        gettext_noop("Every screen and action."),
        gettext_noop("Full administrators."),
        gettext_noop("Back Office users without admin rights."),
    }
)


def in_reader_language(text):
    """A seeded text in the active language; any other text unchanged."""
    return gettext(text) if text in SEEDED else text


def as_seeded(text):
    """Back to the seed's English: an edit form saved unchanged by a German
    reader must not store the German (English readers would see it)."""
    for seed in SEEDED:
        if text == gettext(seed):
            return seed
    return text


class SeededDescription(models.CharField):
    """A description column whose seeded texts read translated.

    Deconstructs as a plain CharField: the schema does not change."""

    def from_db_value(self, value, expression, connection):
        return in_reader_language(value)

    def get_prep_value(self, value):
        return as_seeded(super().get_prep_value(value))

    def deconstruct(self):
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.CharField", args, kwargs
