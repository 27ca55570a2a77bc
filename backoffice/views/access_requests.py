"""Privileged access on demand, at the screens: "Request access" (activate an
eligible-only group), "My requests" (withdraw, end now) and "Approvals"
(approve or deny what this person could decide). The service
(accounts.services.privileged) decides every rule; these views pass the
facts (who, what, when the second factor was last proven) and show its
answers."""

from allauth.account.internal.flows.reauthentication import suspend_request
from allauth.mfa.models import Authenticator
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from accounts.audit import Actor
from accounts.errors import AccountError
from accounts.login import SESSION_MFA_BY_IDP, second_factor_at
from accounts.models import AccessRequest
from accounts.privileged_selectors import eligible_groups, requests_of, requests_to_decide
from accounts.selectors import user_mfa_types
from accounts.services import privileged
from backoffice.permissions import requires
from backoffice.views.named import show_refusal

Status = AccessRequest.Status


class ActivationForm(forms.Form):
    group = forms.TypedChoiceField(label=gettext_lazy("Group"), coerce=int)
    justification = forms.CharField(
        label=gettext_lazy("Justification"),
        max_length=privileged.JUSTIFICATION_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("What you need it for; the approvers and the audit log see it."),
    )
    ticket = forms.CharField(
        label=gettext_lazy("Ticket reference (optional)"),
        max_length=privileged.TICKET_MAX,
        required=False,
    )
    hours = forms.IntegerField(label=gettext_lazy("Hours"), min_value=1, initial=1)

    def __init__(self, *args, choices=(), longest=1, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["group"].choices = choices
        self.fields["hours"].max_value = longest
        self.fields["hours"].widget.attrs.update({"min": 1, "max": longest})
        self.fields["hours"].help_text = gettext_lazy(
            "At most the group's longest activation (see the table)."
        )


class NoteForm(forms.Form):
    note = forms.CharField(
        label=gettext_lazy("Note (optional)"), max_length=privileged.NOTE_MAX, required=False
    )


def _second_factor_page(request) -> str:
    """Where this person proves a second factor again: allauth's MFA
    re-authentication (a code), or its security-key page for someone whose
    only factors are keys. "" when they have none."""
    types = user_mfa_types(request.user)
    if types & {Authenticator.Type.TOTP, Authenticator.Type.RECOVERY_CODES}:
        return reverse("mfa_reauthenticate")
    if Authenticator.Type.WEBAUTHN in types:
        return reverse("mfa_reauthenticate_webauthn")
    return ""


@login_required
def access_request(request):
    rows = eligible_groups(request.user)
    open_ = [r for r in rows if not r.active_until and not r.pending]
    choices = [(r.group.pk, r.group.name) for r in open_]
    longest = max((r.group.max_activation_hours for r in open_), default=1)
    form = ActivationForm(request.POST or None, choices=choices, longest=longest)
    no_factor = False
    if request.method == "POST" and form.is_valid():
        group = next(r.group for r in open_ if r.group.pk == form.cleaned_data["group"])
        try:
            done = privileged.access_activate(
                user=request.user,
                group=group,
                justification=form.cleaned_data["justification"],
                ticket=form.cleaned_data["ticket"],
                hours=form.cleaned_data["hours"],
                mfa_at=second_factor_at(request),
                by=Actor.of(request),
            )
        except AccountError as exc:
            if exc.code != "mfa":
                show_refusal(form, exc)
            elif page := _second_factor_page(request):
                # allauth keeps this POST and replays it once the factor is proven.
                return suspend_request(request, page)
            else:
                no_factor = True
        else:
            if done.status == Status.ACTIVE:
                messages.success(
                    request,
                    _("Group %(name)s is active for you until %(until)s.")
                    % {"name": group.name, "until": _when(done.active_until)},
                )
            else:
                messages.success(
                    request,
                    _("Your request for group %(name)s waits for another person's approval.")
                    % {"name": group.name},
                )
            return redirect("backoffice:access-mine")
    return render(
        request,
        "backoffice/access/request.html",
        {
            "rows": rows,
            "form": form if choices else None,
            "no_factor": no_factor,
            "idp_vouched": bool(request.session.get(SESSION_MFA_BY_IDP)),
        },
    )


def _when(moment) -> str:
    from django.utils import formats, timezone

    return formats.date_format(timezone.localtime(moment), "SHORT_DATETIME_FORMAT")


@login_required
def access_mine(request):
    return render(
        request,
        "backoffice/access/mine.html",
        {"rows": requests_of(request.user), "me": request.user.pk},
    )


def _own(request, pk: int) -> AccessRequest:
    """A request for this person or asked by them; others are not found."""
    mine = Q(user=request.user) | Q(requested_by=request.user)
    return get_object_or_404(AccessRequest.objects.filter(mine).select_related("group"), pk=pk)


@require_POST
@login_required
def access_withdraw(request, pk: int):
    subject = _own(request, pk)
    try:
        privileged.access_request_cancel(request=subject, by=Actor.of(request))
    except AccountError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, _("Your request for group %(name)s was withdrawn.") % {"name": subject.group}
        )
    return redirect("backoffice:access-mine")


@require_POST
@login_required
def access_end(request, pk: int):
    subject = _own(request, pk)
    if subject.user_id != request.user.pk:
        return redirect("backoffice:access-mine")
    try:
        privileged.access_deactivate(request=subject, by=Actor.of(request))
    except AccountError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, _("Group %(name)s is no longer active for you.") % {"name": subject.group}
        )
    return redirect("backoffice:access-mine")


@requires("backoffice:users:edit")
def access_approvals(request):
    rows = requests_to_decide(request.user)
    for row in rows:
        row.expires_at = row.created_at + privileged.PENDING_FOR
    return render(
        request,
        "backoffice/access/approvals.html",
        {"rows": rows},
    )


def _decide(request, pk: int, decide, done: str):
    subject = get_object_or_404(AccessRequest.objects.select_related("group", "user"), pk=pk)
    form = NoteForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(e for errs in form.errors.values() for e in errs))
        return redirect("backoffice:access-approvals")
    try:
        decide(request=subject, note=form.cleaned_data["note"], by=Actor.of(request))
    except AccountError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, done % {"name": subject.group.name, "email": subject.user.email})
    return redirect("backoffice:access-approvals")


@require_POST
@requires("backoffice:users:edit")
def access_approve(request, pk: int):
    return _decide(
        request,
        pk,
        privileged.access_request_approve,
        _("Approved: group %(name)s for %(email)s."),
    )


@require_POST
@requires("backoffice:users:edit")
def access_deny(request, pk: int):
    return _decide(
        request, pk, privileged.access_request_deny, _("Denied: group %(name)s for %(email)s.")
    )
