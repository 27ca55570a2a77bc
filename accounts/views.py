"""Thin wrappers over allauth's views where the Back Office answers differently."""

import logging

from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.account.views import LoginView as AllauthLoginView
from allauth.core.ratelimit import respond_429
from allauth.mfa.base.views import AuthenticateView
from allauth.mfa.webauthn.views import LoginWebAuthnView
from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from accounts import extensions, login, services, throttle
from accounts.audit import Actor, AuditAction, audit

logger = logging.getLogger("iam.security")

THROTTLED = "too_many_login_attempts"


class LoginView(AllauthLoginView):
    """allauth's login, plus one button per other way in (an identity
    provider: accounts.extensions); a throttled attempt is a 429 and is
    logged."""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["login_options"] = self.options
        context["notices"] = extensions.login_page_notices(self.request)
        return context

    def dispatch(self, request, *args, **kwargs):
        self.options = extensions.login_options()
        if request.method == "POST" and not throttle.consume(request, "login"):
            # IAM_RATE_LOGIN, per client IP
            request.retry_after = throttle.retry_after("login")
            return respond_429(request)
        response = super().dispatch(request, *args, **kwargs)
        # A button's POST is answered with a redirect to the provider;
        # CSP form-action must allow that destination.
        allow_form_action(response, [o for option in self.options for o in option.origins])
        next_url = request.POST.get("next") or request.GET.get("next") or ""
        allow_form_action(response, extensions.login_redirect_origins(request, next_url))
        return response

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.has_error("__all__", code=THROTTLED):
            email = str(form.data.get("login", ""))[:254]
            ip = self.request.META.get("REMOTE_ADDR")
            logger.warning("login throttled email=%s ip=%s", email, ip)
            audit(
                AuditAction.LOGIN_THROTTLED,
                by=Actor.of(self.request),
                target_label=email,
                success=False,
            )
            response.status_code = 429
            response["Retry-After"] = str(throttle.retry_after("login_failed"))
        return response


def allow_form_action(response, origins) -> None:
    """Add `origins` to the response's CSP form-action (browsers check every
    redirect that follows a form's POST against it)."""
    if not origins:
        return
    update = dict(getattr(response, "_csp_update", None) or {})
    update["form-action"] = list(dict.fromkeys([*update.get("form-action", []), *origins]))
    response._csp_update = update


class MfaAuthenticateView(AuthenticateView):
    """allauth's MFA step of a login; its POST is answered with a redirect to
    where the login goes next, which may go on to an OAuth client."""

    def dispatch(self, request, *args, **kwargs):
        response = super().dispatch(request, *args, **kwargs)
        stage = getattr(request, "_login_stage", None)
        next_url = getattr(getattr(stage, "login", None), "redirect_url", None) or ""
        allow_form_action(response, extensions.login_redirect_origins(request, next_url))
        return response

    def get_context_data(self, **kwargs):
        """Offer only what this user has: the code field for an
        authenticator app or recovery codes, "Use a security key" for a
        registered key (allauth offers the button to everyone)."""
        from allauth.mfa.models import Authenticator

        context = super().get_context_data(**kwargs)
        kinds = set(
            Authenticator.objects.filter(user=self.stage.login.user).values_list("type", flat=True)
        )
        context["has_webauthn"] = Authenticator.Type.WEBAUTHN in kinds
        context["has_code"] = bool(
            kinds & {Authenticator.Type.TOTP, Authenticator.Type.RECOVERY_CODES}
        )
        return context


class PasskeyLoginView(LoginWebAuthnView):
    """allauth's "Log in with a passkey" (its rate limit, its checks of the
    signature and of user verification), finishing through accounts.login
    like every login; a refused key is audited."""

    def form_invalid(self, form):
        """An unknown or malformed key: one message, the one a blocked
        account's key gets too (allauth's would say "Incorrect code")."""
        audit(
            AuditAction.LOGIN_FAILED,
            by=Actor.of(self.request),
            success=False,
            details={"method": login.PASSKEY, "reason": "passkey not accepted"},
        )
        message = str(login.PASSKEY_REFUSED)
        get_account_adapter().add_message(self.request, messages.ERROR, message=message)
        return HttpResponseRedirect(reverse("account_login"))

    def form_valid(self, form):
        response = login.passkey_login(self.request, form.cleaned_data["credential"])
        if isinstance(response, str):  # refused: its message, else an unknown key's answer
            message = response or str(login.PASSKEY_REFUSED)
            get_account_adapter().add_message(self.request, messages.ERROR, message=message)
            return HttpResponseRedirect(reverse("account_login"))
        return response


def not_found(request, *args, **kwargs):
    """allauth pages that have no place in a Back Office (self-service
    signup, adding email addresses) answer 404."""
    raise Http404()


EMAIL_CHANGE_TOKEN = "iam_email_change_token"


@require_GET
def email_change_link(request, token: str):
    """The link mailed to a new address (accounts.services.emails): its
    token moves into the session and the browser goes on to the page
    without it, so the token is in no later URL, Referer or log line (as
    allauth does with password reset keys)."""
    request.session[EMAIL_CHANGE_TOKEN] = token[:1024]
    return HttpResponseRedirect(reverse("email_change_confirm"))


@require_http_methods(["GET", "POST"])
def email_change_confirm(request):
    """What the link would change (GET); the page's button (a POST with
    CSRF) changes it. Whoever opened the link may follow it: the link is
    the proof."""
    token = request.session.get(EMAIL_CHANGE_TOKEN, "")
    try:
        if request.method == "POST":
            user = services.user_email_change_confirm(token=token, by=Actor.of(request))
            return render(request, "account/email_change_confirm.html", {"done": user})
        change = services.email_change_for_link(token=token)
    except services.LinkRefused as refused:
        context = {"refused": str(refused)}
        return render(request, "account/email_change_confirm.html", context, status=400)
    return render(request, "account/email_change_confirm.html", {"change": change})
