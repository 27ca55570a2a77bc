"""Users screens: list, add, edit, block/unblock, delete, send a reset link."""

from allauth.usersessions.models import UserSession
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from accounts import extensions, services
from accounts.access import can
from accounts.audit import Actor
from accounts.delegation import held_by, locked_groups, names, rank_beyond
from accounts.models import User
from accounts.selectors import (
    email_change_pending,
    user_mfa_types,
    user_recent_events,
    user_search,
)
from api.selectors import capped_clients, clients_acting_for
from backoffice.forms import UserCreateForm, UserEditForm, UserFilterForm
from backoffice.permissions import requires
from backoffice.views.named import show_refusal
from iam.paging import page_of


@requires("backoffice:users:view")
def user_list(request):
    filters = UserFilterForm(request.GET or None)
    chosen = filters.filters()
    users = User.objects.none() if filters.search_refused() else user_search(**chosen)
    page = page_of(request, users)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "backoffice/users/list.html",
        {
            "page": page,
            "filters": filters,
            "query": query.urlencode(),
            "sort_links": _sort_links(query, chosen["sort"]),
            "can_edit": can(request.user, "backoffice:users:edit"),
            "can_create": can(request.user, "backoffice:users:create"),
        },
    )


def _sort_links(query, current: str) -> dict:
    """Column header links: a click sorts by the column, a second reverses it."""
    links = {}
    for column in ("email", "name", "created", "last_login"):
        q = query.copy()
        q["sort"] = f"-{column}" if current == column else column
        arrow = " ↑" if current == column else " ↓" if current == f"-{column}" else ""
        # What a screen reader announces for the sorted column (WAI-ARIA aria-sort).
        order = "ascending" if current == column else "descending" if arrow else ""
        links[column] = {"url": "?" + q.urlencode(), "arrow": arrow, "aria_sort": order}
    return links


@requires("backoffice:users:create")
def user_create(request):
    held = held_by(request.user)
    form = UserCreateForm(
        request.POST or None,
        locked_groups=locked_groups(held),
        may_set_status="backoffice:users:block" in held,
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        invite = data["password_mode"] == "invite"
        active = data["status"] == "active"
        try:
            user = services.user_create(
                email=data["email"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                password=None if invite else data["password1"],
                groups=list(data["groups"]),
                active=active,
                by=Actor.of(request),
                invite=invite and active,
                language=data["language"],
            )
        except services.AccountError as exc:
            show_refusal(form, exc, aliases={"password": "password1"})
        else:
            if invite and user.is_active:
                messages.success(
                    request,
                    _("User %(email)s added; a set-password email is on its way.")
                    % {"email": user.email},
                )
            else:
                messages.success(request, _("User %(email)s added.") % {"email": user.email})
            return redirect("backoffice:user-edit", pk=user.pk)
    return render(request, "backoffice/users/create.html", {"form": form})


@requires("backoffice:users:view")
def user_detail(request, pk: int):
    """Read-only: who this is, what they belong to, where they are logged in,
    and (for those who may read the audit log, where IPs are shown anyway)
    what happened lately and from which IPs."""
    user = get_object_or_404(User, pk=pk)
    may_audit = can(request.user, "backoffice:audit:view")
    context = {
        "subject": user,
        "groups": user.groups.order_by("name"),
        "has_mfa": bool(user_mfa_types(user)),
        "sessions": UserSession.objects.filter(user=user).order_by("-last_seen_at"),
        "identities": user.identities.all(),
        "events": user_recent_events(user) if may_audit else None,
        "can_edit": can(request.user, "backoffice:users:edit"),
        "pending_email": email_change_pending(user),
        "api_clients": clients_acting_for(user),
    }
    return render(request, "backoffice/users/detail.html", context)


@requires("backoffice:users:edit")
def user_edit(request, pk: int):
    user = get_object_or_404(User, pk=pk)
    initial = {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "groups": list(user.groups.all()),
        "status": user.status,
        "language": user.language,
    }
    held = held_by(request.user)
    # Rank: an account holding what this admin does not is shown, not changed.
    above = rank_beyond(held, user)
    form = UserEditForm(
        request.POST or None,
        initial=initial,
        instance=user,
        locked_groups=locked_groups(held),
        may_set_status="backoffice:users:block" in held,
        read_only=bool(above),
        address_manager=extensions.address_manager(user) or "",
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            saved = services.user_update(
                user=user,
                email=data["email"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                groups=list(data["groups"]),
                active=data["status"] == "active",
                by=Actor.of(request),
                language=data["language"],
            )
        except services.AccountError as exc:
            show_refusal(form, exc)
            user = get_object_or_404(User, pk=pk)  # as stored (or deleted meanwhile)
        else:
            messages.success(request, _("User %(email)s saved.") % {"email": user.email})
            if saved.requested_email:
                messages.info(request, _email_requested(saved.requested_email))
            tell_to_rotate(request, user)
            return redirect("backoffice:user-edit", pk=user.pk)
    has_mfa = bool(user_mfa_types(user))
    context = {
        "form": form,
        "subject": user,
        "has_mfa": has_mfa,
        "above": names(above) if above else "",
        "pending_email": email_change_pending(user),
    }
    return render(request, "backoffice/users/edit.html", context)


def _email_requested(email: str) -> str:
    return _(
        "A confirmation link was sent to %(email)s; the address changes when it is followed."
    ) % {"email": email}


@require_POST
@requires("backoffice:users:edit")
def user_email_change_cancel(request, pk: int):
    """End the account's pending change of address (its link dies)."""

    def act(user):
        services.user_email_change_cancel(user=user, by=Actor.of(request))

    return _user_action(request, pk, act, gettext_lazy("The change of address was cancelled."))


def tell_to_rotate(request, users) -> None:
    """Service accounts (among `users`) now reaching beyond the holder of
    their client's secret: their tokens stay capped at the holder's rights
    until someone who holds them replaces the secret; say so to whoever
    promoted them (here, or through a group's or a role's change)."""
    for client, short in capped_clients(users):
        messages.warning(
            request,
            _(
                "%(email)s now reaches %(permissions)s, which %(holder)s, who holds the secret "
                "of API client %(client)s, does not: its tokens carry none of it until the "
                "secret is replaced by someone who holds it. Replace the secret on the "
                "client's page."
            )
            % {
                "email": client.account.email,
                "permissions": names(short, limit=5),
                "holder": client.secret_holder_label,
                "client": client.name,
            },
        )


def _user_action(request, pk: int, act, done: str):
    """A one-button action on a user from the edit page: do it, say how it
    went, go back to the page. `done` (translated) may name the user as %(email)s."""
    user = get_object_or_404(User, pk=pk)
    try:
        act(user)
    except services.AccountError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, str(done) % {"email": user.email})
    return redirect("backoffice:user-edit", pk=pk)


def _set_status(request, active: bool):
    return lambda user: services.user_set_status(user=user, active=active, by=Actor.of(request))


def _confirm(request, pk: int, action: str):
    """The page that asks before a one-click action does its harm (GET);
    its button posts to the same URL."""
    user = get_object_or_404(User, pk=pk)
    return render(request, "backoffice/users/confirm.html", {"subject": user, "action": action})


@require_http_methods(["GET", "POST"])
@requires("backoffice:users:block")
def user_block(request, pk: int):
    if request.method != "POST":
        return _confirm(request, pk, "block")
    done = gettext_lazy("User %(email)s blocked; their sessions have ended.")
    return _user_action(request, pk, _set_status(request, False), done)


@require_POST
@requires("backoffice:users:block")
def user_unblock(request, pk: int):
    return _user_action(
        request, pk, _set_status(request, True), gettext_lazy("User %(email)s unblocked.")
    )


@requires("backoffice:users:delete")
def user_delete(request, pk: int):
    user = get_object_or_404(User, pk=pk)
    if request.method == "POST":
        try:
            services.user_delete(user=user, by=Actor.of(request))
        except services.AccountError as exc:
            messages.error(request, str(exc))
            return redirect("backoffice:user-edit", pk=pk)
        messages.success(request, _("User %(email)s deleted.") % {"email": user.email})
        return redirect("backoffice:users")
    return render(request, "backoffice/users/delete.html", {"subject": user})


@require_POST
@requires("backoffice:users:reset-password")
def user_password_reset(request, pk: int):
    def act(user):
        services.user_send_password_link(user=user, invitation=False, by=Actor.of(request))

    return _user_action(
        request, pk, act, gettext_lazy("A password reset email was sent to %(email)s.")
    )


@require_http_methods(["GET", "POST"])
@requires("backoffice:users:reset-mfa")
def user_mfa_reset(request, pk: int):
    if request.method != "POST":
        return _confirm(request, pk, "reset-mfa")

    def act(user):
        services.user_mfa_reset(user=user, by=Actor.of(request))

    return _user_action(request, pk, act, gettext_lazy("MFA of %(email)s was reset."))


@require_POST
@requires("backoffice:users:edit")
def user_identity_unlink(request, pk: int, identity_pk: int):
    """Forget one SSO link: that identity's next login is a first login again."""
    from sso.models import Identity
    from sso.services import identity_unlink

    identity = get_object_or_404(Identity, pk=identity_pk, user_id=pk)

    def act(user):
        identity_unlink(identity=identity, by=Actor.of(request))

    done = _("The %(provider)s identity was unlinked.") % {"provider": identity.provider}
    return _user_action(request, pk, act, done.replace("%", "%%"))
