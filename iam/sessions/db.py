"""SESSION_ENGINE for sessions in the database only (see iam.sessions)."""

from django.contrib.sessions.backends import db

from iam.sessions import WriteOnceOnLogin


class SessionStore(WriteOnceOnLogin, db.SessionStore):
    pass
