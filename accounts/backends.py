"""The password login backend: one account per email, looked up once."""

from allauth.account.auth_backends import AuthenticationBackend

from accounts.selectors import user_get_by_email


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
