"""Thin wrappers over allauth's views where the Back Office answers differently."""

import logging

from allauth.account.views import LoginView as AllauthLoginView
from allauth.core.ratelimit import respond_429
from django.http import Http404

from accounts import throttle
from accounts.adapter import SESSION_LOGIN_METHOD
from accounts.audit import audit

logger = logging.getLogger("iam.security")

THROTTLED = "too_many_login_attempts"


class LoginView(AllauthLoginView):
    """allauth's login, plus one button per SSO provider; a throttled
    attempt is a 429 and is logged."""

    def get_context_data(self, **kwargs):
        from sso.registry import providers

        context = super().get_context_data(**kwargs)
        context["sso_providers"] = [
            {"name": p.name, "login_url": p.login_url()} for p in providers().values()
        ]
        return context

    def dispatch(self, request, *args, **kwargs):
        from sso.registry import providers

        if request.method == "POST":
            if not throttle.consume(request, "login"):  # IAM_RATE_LOGIN, per client IP
                request.retry_after = throttle.retry_after("login")
                return respond_429(request)
            # A password login, whatever came before.
            request.session.pop(SESSION_LOGIN_METHOD, None)
        response = super().dispatch(request, *args, **kwargs)
        origins = [o for p in providers().values() for o in p.form_action_origins()]
        if origins:
            # An SSO button's POST is answered with a redirect to the
            # provider; CSP form-action must allow that destination.
            response._csp_update = {"form-action": origins}
        return response

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.has_error("__all__", code=THROTTLED):
            email = str(form.data.get("login", ""))[:254]
            ip = self.request.META.get("REMOTE_ADDR")
            logger.warning("login throttled email=%s ip=%s", email, ip)
            audit("login.throttled", request=self.request, target_label=email, success=False)
            response.status_code = 429
            response["Retry-After"] = str(throttle.retry_after("login_failed"))
        return response


def not_found(request, *args, **kwargs):
    """allauth pages that have no place in a Back Office (self-service
    signup, adding email addresses) answer 404."""
    raise Http404()
