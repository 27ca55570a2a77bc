"""How a view declares the resource it guards."""

from functools import wraps

from allauth.core.exceptions import ReauthenticationRequired
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

from accounts.access import can
from accounts.reauth import authenticated_recently
from accounts.resources import validate_registered

# Actions that only read; every other action changes something and needs a
# recent authentication (password, MFA code or SSO within 10 minutes) before
# the change is made: on a POST. Opening an edit form or a confirm page (GET)
# asks nothing; the save does, and allauth replays it after the password.
READ_ACTIONS = {"view", "export"}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def requires(resource: str):
    """Log-in required, then `resource` must be allowed (a 403 page
    otherwise). A changing action asks to re-authenticate, when the last
    authentication is stale, just before it changes something (on a POST,
    not on opening its form); allauth keeps the interrupted request and
    replays it afterwards.

    The resource is validated when the module is imported (well formed and
    in accounts.resources.REGISTRY), so a typo fails at start-up rather than
    silently denying everyone."""
    sensitive = validate_registered(resource)[2] not in READ_ACTIONS

    def decorate(view):
        @wraps(view)
        def guarded(request, *args, **kwargs):
            if not can(request.user, resource):
                raise PermissionDenied(resource)
            changing = request.method not in SAFE_METHODS
            if sensitive and changing and not authenticated_recently(request):
                raise ReauthenticationRequired()
            return view(request, *args, **kwargs)

        guarded.resource = resource
        return login_required(guarded)

    return decorate
