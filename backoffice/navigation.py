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
    NavItem(_("Access reviews"), "backoffice:reviews", "backoffice:reviews:view"),
)


@cache
def url(name: str) -> str:
    """reverse() once per process: the URLconf does not change at run time,
    and the header links are on every page."""
    return reverse(name)


# Privileged access on demand (accounts.services.privileged): "Request
# access" and "My requests" for people it concerns, "Approvals" for those
# who may decide.
REQUEST_ITEMS = (
    NavItem(_("Request access"), "backoffice:access-request", ""),
    NavItem(_("My requests"), "backoffice:access-mine", ""),
)
APPROVALS = NavItem(_("Approvals"), "backoffice:access-approvals", "backoffice:users:edit")

# Whether privileged access concerns a user, by (user id, access stamp): a
# query once per stamp in this process, none on the pages after (a new
# eligible membership or an activation gives a new stamp).
_concerned: dict[tuple[int, int], bool] = {}
CONCERNED_MAX = 4096


def concerned(user) -> bool:
    from accounts.privileged_selectors import has_privileged_access

    key = (user.pk, user.access_stamp)
    found = _concerned.get(key)
    if found is None:
        if len(_concerned) >= CONCERNED_MAX:
            _concerned.clear()
        found = _concerned[key] = has_privileged_access(user)
    return found


def visible_items(user) -> list[dict]:
    """The navigation this user may see: nothing they could not open.
    Approvals shows no count: a query on every page for it cost the
    dashboard about 30 % of its CPU (benchmarks/README.md); approvers are
    mailed when something waits."""
    items = [
        {"label": item.label, "url": url(item.url_name)}
        for item in ITEMS
        if can(user, item.resource)
    ]
    if concerned(user):
        items += [{"label": item.label, "url": url(item.url_name)} for item in REQUEST_ITEMS]
    if can(user, APPROVALS.resource):
        items.append({"label": APPROVALS.label, "url": url(APPROVALS.url_name)})
    return items
