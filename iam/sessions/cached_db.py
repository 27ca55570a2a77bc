"""SESSION_ENGINE for sessions in the database, read through the shared
cache (see iam.sessions)."""

from django.contrib.sessions.backends import cached_db

from iam.sessions import WriteOnceOnLogin


class SessionStore(WriteOnceOnLogin, cached_db.SessionStore):
    pass
