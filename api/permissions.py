"""What a token may do: the same `area:screen:action` resources as the
screens, for the token's account, narrowed by the token's scopes.

A request needs the resource in both the account's effective permissions
(accounts.access.can, the check every screen makes, so a group change applies
on the next call) and the resources the token's scopes name (api.scopes).
Writes go further (api.access): delegation's bounds are applied to the same
narrowed set.
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.permissions import BasePermission

from accounts.access import can, permissions
from accounts.resources import validate_registered
from api import scopes


class InsufficientScope(exceptions.PermissionDenied):
    default_code = "insufficient_scope"


class Forbidden(exceptions.PermissionDenied):
    default_code = "forbidden"


def token_resources(request) -> frozenset[str]:
    """The resources this request's token names (its scopes)."""
    return scopes.resources_of(request.auth.scope)


def token_permissions(request) -> frozenset[str]:
    """The account's effective permissions within the token's scopes."""
    return permissions(request.user) & token_resources(request)


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
            if not any(can(request.user, r) for r in in_scope):
                raise Forbidden(f"Your account may not use {' or '.join(in_scope)}.")
            return True

    Requires.resources = resources
    return Requires
