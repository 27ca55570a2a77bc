"""Users screens: list, add, edit, block/unblock, delete, send a reset link."""

from allauth.usersessions.models import UserSession
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
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
    pending_grants,
    user_memberships,
    user_mfa_types,
    user_recent_events,
    user_search,
)
from accounts.subject_actions import subject_actions
from api.selectors import capped_clients, clients_acting_for
from backoffice.forms import UserCreateForm, UserEditForm, UserFilterForm, UserGroupsForm
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


def _page(request, user, tab: str, **extra) -> dict:
    """What every tab of the user page shows: the header (who, status, the
    actions the services would allow on this account) and the tabs."""
    may_audit = can(request.user, "backoffice:audit:view")
    tabs = [
        ("details", "backoffice:user-edit", gettext_lazy("Details")),
        ("groups", "backoffice:user-groups", gettext_lazy("Groups")),
        ("security", "backoffice:user-security", gettext_lazy("Security")),
        ("sessions", "backoffice:user-sessions", gettext_lazy("Sessions")),
    ]
    if may_audit:
        tabs.append(("events", "backoffice:user-events", gettext_lazy("Events")))
    return {
        "subject": user,
        "tab": tab,
        "tabs": [{"key": k, "url": reverse(n, args=[user.pk]), "label": t} for k, n, t in tabs],
        "actions": extra.pop("actions", None) or subject_actions(request.user, user),
        "has_mfa": bool(user_mfa_types(user)),
        "may_audit": may_audit,
        **extra,
    }


@requires("backoffice:users:view")
def user_detail(request, pk: int):
    """The old address of the read-only page: now the user page's first tab."""
    get_object_or_404(User, pk=pk)
    return redirect("backoffice:user-edit", pk=pk)


@requires("backoffice:users:view")
def user_details(request, pk: int):
    """Details tab: the edit form for whoever the service lets edit this
    account, its facts read-only for everyone else."""
    user = get_object_or_404(User, pk=pk)
    if request.method == "POST" or subject_actions(request.user, user).edit:
        return user_edit(request, pk)
    above = rank_beyond(held_by(request.user), user)
    context = _page(
        request,
        user,
        "details",
        above=names(above) if above else "",
        pending_email=email_change_pending(user),
        groups=user.groups.order_by("name"),
    )
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
    actions = subject_actions(request.user, user)
    status = form.fields["status"]
    may_block = "backoffice:users:block" in held
    if may_block and not (above or actions.block or actions.unblock):
        # Blocking oneself: the service refuses it; the form says so up front.
        status.disabled = True
        status.help_text = actions.refused.get("block", "")
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
            tell_waiting(request, saved)
            if saved.requested_email:
                messages.info(request, _email_requested(saved.requested_email))
            tell_to_rotate(request, user)
            return redirect("backoffice:user-edit", pk=user.pk)
    context = _page(
        request,
        user,
        "details",
        actions=actions,
        form=form,
        above=names(above) if above else "",
        pending_email=email_change_pending(user),
    )
    return render(request, "backoffice/users/edit.html", context)


@requires("backoffice:users:view")
def user_groups(request, pk: int):
    """Groups tab: the account's memberships (end, eligibility) and the
    grants waiting for a second administrator; the picker (groups beyond
    the actor disabled, with the reason), each group with an optional end,
    when the service would let the actor change them."""
    if request.method == "POST":
        return user_groups_save(request, pk)
    user = get_object_or_404(User, pk=pk)
    memberships = user_memberships(user)
    form = None
    if subject_actions(request.user, user).groups:
        form = _groups_form(request, user, memberships)
    return _groups_page(request, user, memberships, form)


def _groups_page(request, user, memberships, form):
    context = _page(
        request,
        user,
        "groups",
        form=form,
        rows=_group_rows(form, memberships),
        memberships=memberships,
        pending=pending_grants(user),
    )
    return render(request, "backoffice/users/groups.html", context)


def _group_rows(form, memberships) -> list[dict]:
    """The picker as table rows: each group's checkbox, its end input and
    how the account's membership in it stands."""
    if form is None:
        return []
    held = {m.group_id: m for m in memberships}
    return [
        {
            "choice": choice,
            "end": form.end_field(choice.data["value"]),
            "membership": held.get(choice.data["value"]),
        }
        for choice in form["groups"]
    ]


def _groups_form(request, user, memberships):
    return UserGroupsForm(
        request.POST or None,
        initial={"groups": [m.group for m in memberships]},
        locked_groups=locked_groups(held_by(request.user)),
        ends={m.group_id: m.ends_at for m in memberships},
    )


@requires("backoffice:users:edit")
def user_groups_save(request, pk: int):
    """The picker's save: the same service as the edit form decides; a
    refusal is shown on the form, and nothing is written."""
    user = get_object_or_404(User, pk=pk)
    memberships = user_memberships(user)
    form = _groups_form(request, user, memberships)
    if not form.is_valid() and "groups" in form.errors:
        # A forged or stale list: said, nothing changed, the tab as stored.
        messages.error(request, _("Choose groups from the list."))
        return redirect("backoffice:user-groups", pk=pk)
    if form.is_valid():
        try:
            # Only the groups: the rest is read (not judged again) inside the write.
            saved = services.user_update(
                user=user,
                email=None,
                first_name=None,
                last_name=None,
                groups=list(form.cleaned_data["groups"]),
                active=None,
                by=Actor.of(request),
                ends=form.ends(),
            )
        except services.AccountError as exc:
            show_refusal(form, exc, aliases={"ends": "groups"})
        else:
            messages.success(request, _("User %(email)s saved.") % {"email": user.email})
            tell_waiting(request, saved)
            tell_to_rotate(request, user)
            return redirect("backoffice:user-groups", pk=pk)
    user = get_object_or_404(User, pk=pk)  # as stored (or deleted meanwhile)
    return _groups_page(request, user, user_memberships(user), form)


def tell_waiting(request, saved) -> None:
    """Say which groups of a save wait for a second administrator."""
    for grant in getattr(saved, "pending_grants", None) or ():
        messages.info(
            request,
            _("Group %(name)s waits for a second administrator's approval.")
            % {"name": grant.group.name},
        )


@requires("backoffice:users:view")
def user_security(request, pk: int):
    """Security tab: how the account logs in, and who acts for it."""
    from allauth.mfa.models import Authenticator

    user = get_object_or_404(User, pk=pk)
    kinds = list(Authenticator.objects.filter(user=user).values_list("type", flat=True))
    context = _page(
        request,
        user,
        "security",
        mfa_app="totp" in kinds,
        mfa_keys=kinds.count("webauthn"),
        mfa_codes="recovery_codes" in kinds,
        identities=user.identities.all(),
        api_clients=clients_acting_for(user),
    )
    return render(request, "backoffice/users/security.html", context)


@requires("backoffice:users:view")
def user_sessions(request, pk: int):
    """Sessions tab: where the account is logged in (IPs for audit readers)."""
    user = get_object_or_404(User, pk=pk)
    sessions = UserSession.objects.filter(user=user).order_by("-last_seen_at")
    context = _page(request, user, "sessions", sessions=sessions)
    return render(request, "backoffice/users/sessions.html", context)


@requires("backoffice:audit:view")
def user_events(request, pk: int):
    """Events tab: the latest events by or about the account."""
    user = get_object_or_404(User, pk=pk)
    context = _page(request, user, "events", events=user_recent_events(user))
    return render(request, "backoffice/users/events.html", context)


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

    return _user_action(
        request, pk, act, gettext_lazy("The two-factor authentication of %(email)s was reset.")
    )


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
