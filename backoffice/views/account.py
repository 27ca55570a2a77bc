"""My account: every logged-in user's own security page and sessions."""

from allauth.mfa.models import Authenticator
from allauth.usersessions.models import UserSession
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts import services
from accounts.audit import Actor
from accounts.mfa import mfa_required
from accounts.selectors import user_mfa_types


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
        },
    )


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
        raise Http404("No such session of yours.")
    messages.success(request, "That session has ended.")
    return redirect("backoffice:account-sessions")


@require_POST
@login_required
def sessions_end_others(request):
    ended = services.user_other_sessions_end(
        user=request.user, keep_session_key=request.session.session_key, by=Actor.of(request)
    )
    messages.success(request, f"{ended} other session{'s' if ended != 1 else ''} ended.")
    return redirect("backoffice:account-sessions")
