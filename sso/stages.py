"""The last step of an SSO login, after allauth's MFA step (accounts.extensions
login_stages): a link that a password proved is made, and the groups the
provider's roles map to are applied. A login that stops at the MFA step
(or before) has changed neither."""

from __future__ import annotations

from allauth.account.stages import LoginStage
from allauth.mfa.internal.constants import LoginStageKey
from django.contrib import messages
from django.shortcuts import redirect

from accounts.audit import Actor, AuditAction, audit
from accounts.login import stage_data
from sso.errors import SSOError

KEY = "sso"


class CompleteSsoLogin(LoginStage):
    key = "iam_sso_complete"

    def handle(self):
        completion = stage_data(self.login).get(KEY)
        user = self.login.user
        if not completion or user is None:
            return None, True
        from sso.services import login_completed

        mfa = self.controller.get_stage(LoginStageKey.MFA_AUTHENTICATE.value)
        mfa_passed = bool(mfa and mfa.state.get("authentication_required"))
        by = Actor.system(request=self.request)
        try:
            login_completed(by=by, user=user, completion=completion, mfa_passed=mfa_passed)
        except SSOError as error:
            audit(
                AuditAction.SSO_FAILED,
                by=by.as_user(user),
                target=user,
                success=False,
                details={"provider": completion.get("provider", ""), "reason": error.reason},
            )
            messages.error(self.request, error.message)
            return redirect("account_login"), False
        return None, True
