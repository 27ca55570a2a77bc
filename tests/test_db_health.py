"""The guard of iam.db.postgresql, a patch kept by measurement: its health
check answers Django's `is_usable()` question without a statement. If Django
stops asking that question (or asks it another way), this fails and the
patch must be looked at again."""

import inspect

from django.db.backends.base.base import BaseDatabaseWrapper


def test_django_still_checks_health_through_is_usable():
    source = inspect.getsource(BaseDatabaseWrapper.close_if_health_check_failed)
    assert "self.is_usable()" in source
    assert "health_check_enabled" in source


def test_the_patch_overrides_only_is_usable():
    from iam.db.postgresql.base import DatabaseWrapper

    own = {name for name in vars(DatabaseWrapper) if not name.startswith("__")}
    assert own == {"is_usable"}
