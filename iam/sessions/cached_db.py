"""SESSION_ENGINE for sessions in the database, read through the shared
cache (see iam.sessions).

A page reads its session from the cache and then, for its access checks, the
generation of the compiled rules (accounts.access): both come in one round
trip here, and accounts.middleware.AuthenticationMiddleware hands the
generation to the user of the request.
"""

from django.contrib.sessions.backends import cached_db

from iam.sessions import WriteOnceOnLogin


class SessionStore(WriteOnceOnLogin, cached_db.SessionStore):
    acl_generation = None

    def load(self):
        from accounts.access import GENERATION_KEY

        try:
            found = self._cache.get_many([self.cache_key, GENERATION_KEY])
        except Exception:  # as in Django's load: on a cache error, read the database
            found = {}
        self.acl_generation = found.get(GENERATION_KEY)
        data = found.get(self.cache_key)
        if data is not None:
            return data
        # Django's load from here (not super(), which would ask the cache again:
        # a second timeout when it hangs): the database, then back to the cache.
        session = self._get_session_from_db()
        if not session:
            return {}
        data = self.decode(session.session_data)
        self._cache.set(self.cache_key, data, self.get_expiry_age(expiry=session.expire_date))
        return data
