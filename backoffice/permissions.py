"""How a view declares the resource it guards."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

from accounts.access import can
from accounts.resources import validate_resource


def requires(resource: str):
    """Log-in required, then `resource` must be allowed; a 403 page otherwise.

    The resource is validated when the module is imported, so a typo fails
    at start-up rather than silently denying everyone."""
    validate_resource(resource)

    def decorate(view):
        @wraps(view)
        def guarded(request, *args, **kwargs):
            if not can(request.user, resource):
                raise PermissionDenied(resource)
            return view(request, *args, **kwargs)

        guarded.resource = resource
        return login_required(guarded)

    return decorate
