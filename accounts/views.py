"""Thin wrappers over allauth's views where the Back Office answers differently."""

import logging

from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.account.views import LoginView as AllauthLoginView
from allauth.core.ratelimit import respond_429
from allauth.mfa.adapter import get_adapter as get_mfa_adapter
from allauth.mfa.webauthn.views import LoginWebAuthnView
from django.contrib import messages
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse

from accounts import extensions, login, throttle
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
        origins = [origin for option in self.options for origin in option.origins]
        if origins:
            # A button's POST is answered with a redirect to the provider;
            # CSP form-action must allow that destination.
            response._csp_update = {"form-action": origins}
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


class PasskeyLoginView(LoginWebAuthnView):
    """allauth's "Log in with a passkey" (its rate limit, its checks of the
    signature and of user verification), finishing through accounts.login
    like every login; a refused key is audited."""

    def form_invalid(self, form):
        audit(
            AuditAction.LOGIN_FAILED,
            by=Actor.of(self.request),
            success=False,
            details={"method": login.PASSKEY, "reason": "passkey not accepted"},
        )
        return super().form_invalid(form)

    def form_valid(self, form):
        response = login.passkey_login(self.request, form.cleaned_data["credential"])
        if isinstance(response, str):  # refused: its message, else an unknown key's answer
            message = response or get_mfa_adapter().error_messages["incorrect_code"]
            get_account_adapter().add_message(self.request, messages.ERROR, message=message)
            return HttpResponseRedirect(reverse("account_login"))
        return response


def not_found(request, *args, **kwargs):
    """allauth pages that have no place in a Back Office (self-service
    signup, adding email addresses) answer 404."""
    raise Http404()
