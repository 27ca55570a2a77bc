"""Roles screens: list, add, edit (name, description, rules), delete."""

from functools import partial

from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext_lazy as _

from accounts import services
from accounts.delegation import held_by, names, rules_beyond
from accounts.models import Role, User
from accounts.selectors import roles_with_counts
from backoffice.forms import RoleForm
from backoffice.permissions import requires
from backoffice.views.named import confirm_delete, save_form
from backoffice.views.users import tell_to_rotate

TEMPLATE = "backoffice/roles/form.html"


@requires("backoffice:roles:view")
def role_list(request):
    return render(request, "backoffice/roles/list.html", {"roles": roles_with_counts()})


@requires("backoffice:roles:create")
def role_create(request):
    form = RoleForm(request.POST or None, held=held_by(request.user))
    return save_form(
        request,
        form,
        services.role_create,
        done=_("Role %(name)s added."),
        back="backoffice:roles",
        template=TEMPLATE,
    )


@requires("backoffice:roles:edit")
def role_edit(request, pk: int):
    role = get_object_or_404(Role, pk=pk)
    rows = [(r.effect, r.pattern) for r in role.rules.all()]
    initial = {"name": role.name, "description": role.description, "rule_rows": rows}
    # A role reaching beyond this admin's permissions is shown, not changed.
    above = rules_beyond(held_by(request.user), rows)
    form = RoleForm(
        request.POST or None,
        initial=initial,
        read_only=bool(above),
        held=held_by(request.user),
    )
    return save_form(
        request,
        form,
        _telling(request, partial(services.role_update, role=role), role),
        done=_("Role %(name)s saved."),
        back="backoffice:roles",
        template=TEMPLATE,
        subject=role,
        context={
            "groups": role.groups.order_by("name"),
            "above": names(above) if above else "",
        },
    )


def _telling(request, save, role):
    """The save, then a word to rotate for any service account the role's
    change put beyond its client's secret holder."""

    def run(**data):
        saved = save(**data)
        tell_to_rotate(request, User.objects.filter(groups__roles=role).distinct())
        return saved

    return run


@requires("backoffice:roles:delete")
def role_delete(request, pk: int):
    role = get_object_or_404(Role, pk=pk)
    return confirm_delete(
        request,
        role,
        partial(services.role_delete, role=role),
        kind=_("role"),
        back="backoffice:roles",
        edit="backoffice:role-edit",
    )
