"""Roles screens: list, add, edit (name, description, rules), delete."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render

from accounts import services
from accounts.models import Role
from accounts.selectors import roles_with_counts
from backoffice.forms import RoleForm
from backoffice.permissions import requires


@requires("backoffice:roles:view")
def role_list(request):
    return render(request, "backoffice/roles/list.html", {"roles": roles_with_counts()})


@requires("backoffice:roles:create")
def role_create(request):
    form = RoleForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            role = services.role_create(**form.cleaned_data, actor=request.user, request=request)
        except services.AccountError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Role {role.name} added.")
            return redirect("backoffice:roles")
    return render(request, "backoffice/roles/form.html", {"form": form, "subject": None})


@requires("backoffice:roles:edit")
def role_edit(request, pk: int):
    role = get_object_or_404(Role, pk=pk)
    rules = "\n".join(f"{r.effect} {r.pattern}" for r in role.rules.all())
    initial = {"name": role.name, "description": role.description, "rules": rules}
    form = RoleForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.role_update(
                role=role, **form.cleaned_data, actor=request.user, request=request
            )
        except services.AccountError as exc:
            form.add_error(None, str(exc))
            role.refresh_from_db()
        else:
            messages.success(request, f"Role {role.name} saved.")
            return redirect("backoffice:roles")
    groups = role.groups.order_by("name")
    return render(
        request, "backoffice/roles/form.html", {"form": form, "subject": role, "groups": groups}
    )


@requires("backoffice:roles:delete")
def role_delete(request, pk: int):
    role = get_object_or_404(Role, pk=pk)
    if request.method == "POST":
        try:
            services.role_delete(role=role, actor=request.user, request=request)
        except services.AccountError as exc:
            messages.error(request, str(exc))
            return redirect("backoffice:role-edit", pk=pk)
        messages.success(request, f"Role {role.name} deleted.")
        return redirect("backoffice:roles")
    return render(
        request,
        "backoffice/confirm_delete.html",
        {"kind": "role", "subject": role, "cancel": "backoffice:roles"},
    )
