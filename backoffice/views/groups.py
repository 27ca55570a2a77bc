"""Groups screens: list, add, edit (name, description, roles), delete."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render

from accounts import services
from accounts.models import Group
from accounts.selectors import groups_with_counts
from backoffice.forms import GroupForm
from backoffice.permissions import requires


@requires("backoffice:groups:view")
def group_list(request):
    return render(request, "backoffice/groups/list.html", {"groups": groups_with_counts()})


@requires("backoffice:groups:create")
def group_create(request):
    form = GroupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            group = services.group_create(**form.cleaned_data, actor=request.user, request=request)
        except services.AccountError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Group {group.name} added.")
            return redirect("backoffice:groups")
    return render(request, "backoffice/groups/form.html", {"form": form, "subject": None})


@requires("backoffice:groups:edit")
def group_edit(request, pk: int):
    group = get_object_or_404(Group, pk=pk)
    initial = {
        "name": group.name,
        "description": group.description,
        "roles": list(group.roles.all()),
    }
    form = GroupForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.group_update(
                group=group, **form.cleaned_data, actor=request.user, request=request
            )
        except services.AccountError as exc:
            form.add_error(None, str(exc))
            group.refresh_from_db()
        else:
            messages.success(request, f"Group {group.name} saved.")
            return redirect("backoffice:groups")
    members = group.users.order_by("email").only("id", "email")[:20]
    return render(
        request,
        "backoffice/groups/form.html",
        {
            "form": form,
            "subject": group,
            "members": members,
            "member_count": group.memberships.count(),
        },
    )


@requires("backoffice:groups:delete")
def group_delete(request, pk: int):
    group = get_object_or_404(Group, pk=pk)
    if request.method == "POST":
        try:
            services.group_delete(group=group, actor=request.user, request=request)
        except services.AccountError as exc:
            messages.error(request, str(exc))
            return redirect("backoffice:group-edit", pk=pk)
        messages.success(request, f"Group {group.name} deleted.")
        return redirect("backoffice:groups")
    return render(
        request,
        "backoffice/confirm_delete.html",
        {"kind": "group", "subject": group, "cancel": "backoffice:groups"},
    )
