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
        except Exception:  # Django's load decides what a cache failure means
            return super().load()
        self.acl_generation = found.get(GENERATION_KEY)
        data = found.get(self.cache_key)
        return super().load() if data is None else data
