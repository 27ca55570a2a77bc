"""Back Office screens. Each declares its resource with @requires."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponseServerError
from django.shortcuts import render
from django.template import loader

from accounts.models import AuditEvent, User
from backoffice.permissions import requires

PAGE_SIZE = 50


@login_required
def dashboard(request):
    return render(request, "backoffice/dashboard.html")


@requires("backoffice:users:view")
def user_list(request):
    users = User.objects.order_by("email").only(
        "id", "email", "first_name", "last_name", "status", "last_login"
    )
    page = Paginator(users, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "backoffice/user_list.html", {"page": page})


@requires("backoffice:audit:view")
def audit_list(request):
    events = AuditEvent.objects.all()
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "backoffice/audit_list.html", {"page": page})


def forbidden(request, exception=None):
    return render(request, "403.html", status=403)


def not_found(request, exception=None):
    return render(request, "404.html", status=404)


def server_error(request):
    # No context processors: the database or cache may be what failed.
    return HttpResponseServerError(loader.render_to_string("500.html"))
