"""The password login backend: one account per email, looked up once."""

from functools import cache

from allauth.account.auth_backends import AuthenticationBackend

from accounts.models import User
from accounts.selectors import user_get_by_email


@cache
def _by_pk_sql() -> str:
    table = User._meta.db_table
    columns = ", ".join(f.column for f in User._meta.concrete_fields)
    return f"SELECT {columns} FROM {table} WHERE {User._meta.pk.column} = %s"  # noqa: S608


class EmailBackend(AuthenticationBackend):
    """allauth's backend (its timing-attack mitigation and checks) with the
    email lookup narrowed to our one source of truth, `User.email`.

    allauth also searches its EmailAddress table (two more queries per
    login, cProfile), and a stale row there could let an old address log in;
    the email is our login and admins own it, so that table has no say.
    """

    def _authenticate_by_email(self, email: str, password: str):
        if not email:
            return None
        return self._check_password(user_get_by_email(email), password)

    def user_can_authenticate(self, user):
        """A service account never logs in (password, passkey, SSO or a
        session it somehow got): only active people do."""
        return super().user_can_authenticate(user) and getattr(user, "may_log_in", True)

    def get_user(self, user_id):
        """The user of every page, by a raw SELECT (the ORM would build the
        same statement anew on each page)."""
        try:
            pk = int(user_id)
        except (TypeError, ValueError):
            return None
        user = next(iter(User.objects.raw(_by_pk_sql(), [pk])), None)
        return user if user is not None and self.user_can_authenticate(user) else None
