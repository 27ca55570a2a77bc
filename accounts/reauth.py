"""Sensitive actions need a recent authentication.

"Recent" means a password, MFA code or SSO login in this session within
ACCOUNT_REAUTHENTICATION_TIMEOUT (10 minutes), as accounts.login records it.
allauth's own decorator only counts explicit re-authentications, which would
ask again right after login; this counts the login too. When stale, raising
ReauthenticationRequired lets allauth's middleware keep the interrupted
request (a POST included), ask for the password, MFA code or a fresh login
at the identity provider (via AccountAdapter.get_reauthentication_methods),
and replay it.
"""

from functools import wraps

from allauth.account import app_settings
from allauth.core.exceptions import ReauthenticationRequired
from django.contrib.auth.decorators import login_required

from accounts.login import seconds_since_authentication


def authenticated_recently(request) -> bool:
    elapsed = seconds_since_authentication(request)
    return elapsed is not None and elapsed < app_settings.REAUTHENTICATION_TIMEOUT


def recent_authentication_required(view):
    """For views outside the resource model (own password, own MFA):
    logged in first (anonymous visitors go to the login page), then recent."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not authenticated_recently(request):
            raise ReauthenticationRequired()
        return view(request, *args, **kwargs)

    return login_required(wrapper)
