"""My account: every logged-in user's own security page and sessions."""

from allauth.mfa.models import Authenticator
from allauth.usersessions.models import UserSession
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from accounts import services
from accounts.audit import Actor
from accounts.mfa import mfa_required
from accounts.selectors import email_change_pending, user_mfa_types
from backoffice.forms import LanguageForm


@login_required
def account(request):
    types = user_mfa_types(request.user)
    return render(
        request,
        "backoffice/account/index.html",
        {
            "totp": Authenticator.Type.TOTP in types,
            "webauthn": Authenticator.Type.WEBAUTHN in types,
            "recovery_codes": Authenticator.Type.RECOVERY_CODES in types,
            "identities": request.user.identities.all(),
            "mfa_required": mfa_required(request.user),
            "language_form": LanguageForm(initial={"language": request.user.language}),
            "pending_email": email_change_pending(request.user),
        },
    )


@require_POST
@login_required
def email_change_cancel(request):
    """Keep my address: the pending change (asked by me or an admin) ends."""
    services.user_email_change_cancel(user=request.user, by=Actor.of(request))
    messages.success(request, _("The change of address was cancelled."))
    return redirect("backoffice:account")


@require_POST
@login_required
def language(request):
    """The user's own interface language; it wins over the browser's."""
    form = LanguageForm(request.POST)
    if form.is_valid():
        user = services.user_set_language(
            user=request.user, language=form.cleaned_data["language"], by=Actor.of(request)
        )
        if user.language:
            translation.activate(user.language)  # say it in the language chosen
        else:
            translation.activate(translation.get_language_from_request(request))
        messages.success(request, _("Your language is saved."))
    else:
        messages.error(request, _("Choose one of the languages offered."))
    return redirect("backoffice:account")


@login_required
def sessions(request):
    rows = UserSession.objects.purge_and_list(request.user)
    rows.sort(key=lambda s: s.last_seen_at or s.created_at, reverse=True)
    current = request.session.session_key
    return render(request, "backoffice/account/sessions.html", {"rows": rows, "current": current})


@require_POST
@login_required
def session_end(request, pk: int):
    if UserSession.objects.filter(pk=pk, session_key=request.session.session_key).exists():
        return redirect("account_logout")  # this very session: that is logging out
    if not services.user_session_end(user=request.user, session_id=pk, by=Actor.of(request)):
        raise Http404(_("No such session of yours."))
    messages.success(request, _("That session has ended."))
    return redirect("backoffice:account-sessions")


@require_POST
@login_required
def sessions_end_others(request):
    ended = services.user_other_sessions_end(
        user=request.user, keep_session_key=request.session.session_key, by=Actor.of(request)
    )
    messages.success(
        request,
        ngettext("%(count)d other session ended.", "%(count)d other sessions ended.", ended)
        % {"count": ended},
    )
    return redirect("backoffice:account-sessions")
