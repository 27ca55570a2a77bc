"""The screens in the navigation, each with the resource that opens it."""

from dataclasses import dataclass
from functools import cache

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from accounts.access import can


@dataclass(frozen=True)
class NavItem:
    label: str  # lazy: translated when the page is rendered
    url_name: str
    resource: str


ITEMS = (
    NavItem(_("Users"), "backoffice:users", "backoffice:users:view"),
    NavItem(_("Groups"), "backoffice:groups", "backoffice:groups:view"),
    NavItem(_("Roles"), "backoffice:roles", "backoffice:roles:view"),
    NavItem(_("Audit log"), "backoffice:audit", "backoffice:audit:view"),
    NavItem(_("API clients"), "backoffice:api-clients", "backoffice:api-clients:view"),
)


@cache
def url(name: str) -> str:
    """reverse() once per process: the URLconf does not change at run time,
    and the header links are on every page."""
    return reverse(name)


def visible_items(user) -> list[dict]:
    """The navigation this user may see: nothing they could not open."""
    return [
        {"label": item.label, "url": url(item.url_name)}
        for item in ITEMS
        if can(user, item.resource)
    ]
