"""Sensitive actions need a recent authentication.

"Recent" means a password, MFA code or SSO login in this session within
ACCOUNT_REAUTHENTICATION_TIMEOUT (10 minutes). allauth's own decorator only
counts explicit re-authentications, which would ask again right after login;
this counts the login too. When stale, raising ReauthenticationRequired lets
allauth's middleware keep the interrupted request (a POST included), ask for
the password or MFA code, and replay it.
"""

import time
from functools import wraps

from allauth.account import app_settings
from allauth.account.internal.flows.login import get_authentication_records
from allauth.core.exceptions import ReauthenticationRequired
from django.contrib.auth.decorators import login_required


def _has_local_method(user) -> bool:
    from allauth.mfa.models import Authenticator

    return user.has_usable_password() or Authenticator.objects.filter(user=user).exists()


def authenticated_recently(request) -> bool:
    records = get_authentication_records(request, request.user)
    stamps = [r.get("at", 0) for r in records if isinstance(r, dict)]
    if stamps and time.time() - max(stamps) < app_settings.REAUTHENTICATION_TIMEOUT:
        return True
    # An SSO-only account has nothing to re-enter here; its provider session
    # (and our session limits) bound it instead.
    return not _has_local_method(request.user)


def recent_authentication_required(view):
    """For views outside the resource model (own password, own MFA):
    logged in first (anonymous visitors go to the login page), then recent."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not authenticated_recently(request):
            raise ReauthenticationRequired()
        return view(request, *args, **kwargs)

    return login_required(wrapper)
