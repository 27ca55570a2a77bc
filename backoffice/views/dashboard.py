from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def dashboard(request):
    """Every logged-in user may see it; the navigation shows the rest."""
    return render(request, "backoffice/dashboard.html")
