from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from reviews.selectors import has_open_items


@login_required
def dashboard(request):
    """Every logged-in user may see it; the navigation shows the rest. A
    reviewer with undecided items of an access review sees "My reviews"
    here (one query, on this page only: not on every page's navigation)."""
    return render(
        request,
        "backoffice/dashboard.html",
        {"reviews_open": has_open_items(request.user)},
    )
