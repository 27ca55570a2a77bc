"""Sensitive actions need a recent authentication.

"Recent" means a password, MFA code or SSO login in this session within
ACCOUNT_REAUTHENTICATION_TIMEOUT (10 minutes). allauth's own decorator only
counts explicit re-authentications, which would ask again right after login;
this counts the login too. When stale, raising ReauthenticationRequired lets
allauth's middleware keep the interrupted request (a POST included), ask for
the password, MFA code or a fresh login at the identity provider (sso.reauth,
via AccountAdapter.get_reauthentication_methods), and replay it.
"""

import time
from functools import wraps

from allauth.account import app_settings
from allauth.account.internal.flows.login import get_authentication_records
from allauth.core.exceptions import ReauthenticationRequired
from django.contrib.auth.decorators import login_required


def authenticated_recently(request) -> bool:
    records = get_authentication_records(request, request.user)
    stamps = [r.get("at", 0) for r in records if isinstance(r, dict)]
    return bool(stamps) and time.time() - max(stamps) < app_settings.REAUTHENTICATION_TIMEOUT


def recent_authentication_required(view):
    """For views outside the resource model (own password, own MFA):
    logged in first (anonymous visitors go to the login page), then recent."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not authenticated_recently(request):
            raise ReauthenticationRequired()
        return view(request, *args, **kwargs)

    return login_required(wrapper)
