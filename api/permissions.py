"""What a token may do: the same `area:screen:action` resources as the
screens, for the token's account, within the token's cap (api.principal).

A request needs the resource in the account's effective permissions
(accounts.access.can, the check every screen makes, so a group change applies
on the next call), in the resources the token's scopes name (api.scopes) and,
for a client-credentials token, in what the client's secret holder holds now.
Writes go further: the services apply delegation's bounds to the same capped
set (the actor carries the cap, api.principal.token_actor).
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.permissions import BasePermission

from accounts.access import can
from accounts.resources import validate_registered
from api.principal import token_cap, token_permissions, token_scope_resources

__all__ = ["token_permissions"]


class InsufficientScope(exceptions.PermissionDenied):
    default_code = "insufficient_scope"


class Forbidden(exceptions.PermissionDenied):
    default_code = "forbidden"


def token_resources(request) -> frozenset[str]:
    """The resources this request's token names (its scopes, within its
    client's scopes now)."""
    return token_scope_resources(request.auth)


class HasToken(BasePermission):
    """Any valid token of an active account (GET me)."""

    def has_permission(self, request, view):
        if request.auth is None or request.user is None:
            raise exceptions.NotAuthenticated()
        return True


def requires(*resources: str):
    """A permission class: the token may use at least one of `resources`
    (PATCH users takes users:edit or users:block; the fields decide)."""
    for resource in resources:
        validate_registered(resource)

    class Requires(HasToken):
        def has_permission(self, request, view):
            super().has_permission(request, view)
            in_scope = [r for r in resources if r in token_resources(request)]
            if not in_scope:
                raise InsufficientScope(
                    f"This token's scopes do not include {' or '.join(resources)}."
                )
            held = [r for r in in_scope if can(request.user, r)]
            if not held:
                raise Forbidden(f"Your account may not use {' or '.join(in_scope)}.")
            if not any(r in token_cap(request) for r in held):
                raise Forbidden(
                    f"The holder of this client's secret may not use {' or '.join(in_scope)} "
                    "(or is blocked): a token never does more than they could. "
                    "Have someone who may replace the secret."
                )
            return True

    Requires.resources = resources
    return Requires
