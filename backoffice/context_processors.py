from django.utils.functional import SimpleLazyObject

from backoffice.navigation import url, visible_items


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    return {
        "nav_items": SimpleLazyObject(lambda: visible_items(user)),
        "dashboard_url": url("backoffice:dashboard"),
        "account_url": url("backoffice:account"),
        "logout_url": url("account_logout"),
    }
