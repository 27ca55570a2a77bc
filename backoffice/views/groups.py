"""Groups screens: list, add, edit (name, description, roles, the
privileged-access settings), delete."""

from functools import partial

from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext_lazy as _

from accounts import services
from accounts.delegation import group_beyond, held_by, locked_roles, names
from accounts.models import Group
from accounts.selectors import group_members, groups_with_counts
from backoffice.forms import GroupForm
from backoffice.permissions import requires
from backoffice.views.named import confirm_delete, save_form
from backoffice.views.users import tell_to_rotate

TEMPLATE = "backoffice/groups/form.html"


@requires("backoffice:groups:view")
def group_list(request):
    return render(request, "backoffice/groups/list.html", {"groups": groups_with_counts()})


@requires("backoffice:groups:create")
def group_create(request):
    form = GroupForm(request.POST or None, locked_roles=locked_roles(held_by(request.user)))
    return save_form(
        request,
        form,
        GroupForm.with_policy(services.group_create),
        done=_("Group %(name)s added."),
        back="backoffice:groups",
        template=TEMPLATE,
    )


@requires("backoffice:groups:edit")
def group_edit(request, pk: int):
    group = get_object_or_404(Group, pk=pk)
    initial = {
        "name": group.name,
        "description": group.description,
        "roles": list(group.roles.all()),
        **{field: getattr(group, field) for field in GroupForm.POLICY},
    }
    held = held_by(request.user)
    # A group reaching beyond this admin's permissions is shown, not changed.
    above = group_beyond(held, group)
    # What the service would refuse is not offered: renaming or deleting a
    # group the configuration names, deleting one that has members.
    configured = services.configured_group_names().get(group.name, "")
    form = GroupForm(
        request.POST or None,
        initial=initial,
        locked_roles=locked_roles(held),
        read_only=bool(above),
        name_fixed=configured,
    )
    member_count = group.memberships.count()
    kept = ""
    if configured:
        kept = _("This group %(why)s and cannot be deleted.") % {"why": _(configured)}
    elif member_count:
        kept = _("To delete this group, remove its %(count)s member(s) first.") % {
            "count": member_count
        }
    context = {
        "members": group_members(group),
        "member_count": member_count,
        "above": names(above) if above else "",
        "kept": kept,
    }
    return save_form(
        request,
        form,
        _telling(
            request,
            GroupForm.with_policy(partial(services.group_update, group=group)),
            group.users.all(),
        ),
        done=_("Group %(name)s saved."),
        back="backoffice:groups",
        template=TEMPLATE,
        subject=group,
        context=context,
    )


def _telling(request, save, members):
    """The save, then a word to rotate for any service account among the
    members that the change put beyond its client's secret holder."""

    def run(**data):
        saved = save(**data)
        tell_to_rotate(request, members)
        return saved

    return run


@requires("backoffice:groups:delete")
def group_delete(request, pk: int):
    group = get_object_or_404(Group, pk=pk)
    return confirm_delete(
        request,
        group,
        partial(services.group_delete, group=group),
        kind=_("group"),
        back="backoffice:groups",
        edit="backoffice:group-edit",
    )
