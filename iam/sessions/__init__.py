"""Session stores that write a login's new session once.

Django's `cycle_key()` (called by `login()`) inserts the new session row at
once, and the response writes it again with what the login added (user,
clocks, MFA answer): two writes and, before them, a lookup of the random key
to make sure it is new. Here the new key is only chosen at login and the row
is inserted once, by the response. A 32-character key over 36 symbols has
165 random bits; the INSERT still fails on the primary key should one ever
repeat, so the lookup is dropped rather than weakened.

Kept by measurement (benchmarks/README.md, "Patches kept"): Django's own
stores cost 9 % more of a full password login, paired run.
tests/test_sessions.py::test_session_store_internals_are_as_the_patch_expects
fails if the Django internals this builds on change.
"""

from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.utils.crypto import get_random_string


class WriteOnceOnLogin:
    _key_unsaved = False

    def _get_new_session_key(self):
        return get_random_string(32, VALID_KEY_CHARS)

    def cycle_key(self):
        data = self._session
        old_key = self.session_key
        self._session_key = self._get_new_session_key()
        self._session_cache = data
        self._key_unsaved = True
        self.modified = True
        if old_key:
            self.delete(old_key)

    def save(self, must_create=False):
        if self._key_unsaved:
            must_create, self._key_unsaved = True, False
        return super().save(must_create=must_create)
