"""A PostgreSQL database of a test's own that can be made unavailable and
brought back: new connections refused, open ones terminated (what a
stopped server or a failover does to the app), without touching the
server other tests use."""

from __future__ import annotations

import uuid
from contextlib import contextmanager

import psycopg
import pytest
from django.conf import settings

postgres_only = pytest.mark.skipif(
    settings.DATABASES["default"]["ENGINE"] != "iam.db.postgresql",
    reason="needs PostgreSQL (DATABASE_URL=postgres://…)",
)


def _admin():
    db = settings.DATABASES["default"]
    return psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )


@contextmanager
def own_database(prefix: str):
    """(name, DATABASE_URL) of a new empty database, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    db = settings.DATABASES["default"]
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"
    try:
        yield name, url
    finally:
        with _admin() as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def cut(name: str, *, allow: bool) -> None:
    """Make the database unavailable (allow=False) or available again."""
    with _admin() as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allow).lower()}')
        if not allow:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
