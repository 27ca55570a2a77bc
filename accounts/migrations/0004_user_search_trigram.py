"""Trigram indexes so the users search (`icontains` on email and names) stays
fast on large PostgreSQL tables. Django's icontains on PostgreSQL compares
UPPER(col::text), so the indexes are on exactly that expression.

Other databases get nothing. Where the database role may not create the
pg_trgm extension, the migration goes on without the indexes and says so:
search still works, only slower on very large tables.
"""

import logging

from django.db import DatabaseError, migrations, transaction

logger = logging.getLogger(__name__)

COLUMNS = ("email", "first_name", "last_name")


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError:
        logger.warning("pg_trgm unavailable: users search runs without trigram indexes")
        return
    for column in COLUMNS:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS accounts_user_{column}_trgm ON accounts_user "
            f'USING gin (UPPER("{column}"::text) gin_trgm_ops)'
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in COLUMNS:
        schema_editor.execute(f"DROP INDEX IF EXISTS accounts_user_{column}_trgm")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_user_list_indexes")]

    operations = [migrations.RunPython(create, drop)]
