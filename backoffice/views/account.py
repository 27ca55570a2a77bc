"""My account: every logged-in user's own security page and sessions."""

from allauth.mfa.models import Authenticator
from allauth.usersessions.models import UserSession
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from accounts.audit import audit
from accounts.mfa import mfa_required
from accounts.services import user_sessions_end


@login_required
def account(request):
    types = set(Authenticator.objects.filter(user=request.user).values_list("type", flat=True))
    return render(
        request,
        "backoffice/account/index.html",
        {
            "totp": Authenticator.Type.TOTP in types,
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
    row = get_object_or_404(UserSession, pk=pk, user=request.user)
    if row.session_key == request.session.session_key:
        return redirect("account_logout")
    row.end()
    audit("session.ended", request=request, target=request.user, details={"ip": row.ip})
    messages.success(request, "That session has ended.")
    return redirect("backoffice:account-sessions")


@require_POST
@login_required
def sessions_end_others(request):
    ended = user_sessions_end(request.user, keep_session_key=request.session.session_key)
    audit("session.ended", request=request, target=request.user, details={"others": ended})
    messages.success(request, f"{ended} other session{'s' if ended != 1 else ''} ended.")
    return redirect("backoffice:account-sessions")
