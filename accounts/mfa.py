"""The MFA policy: who must have a second factor, and what they may not remove.

IAM_MFA_REQUIRED_GROUPS names groups, but rights come from roles: an admin
who may create groups could otherwise copy such a group's roles into a twin
and move someone (themselves, too) into it, keeping every right and losing
the second factor. So the policy follows permissions: a user must use MFA
when they are in one of those groups *or hold any permission one of them
gives*. With the default (`root`, which gives everything) that is every user
with any admin right.

Such users are sent to set a second factor up at once (accounts.middleware,
on the request after any change of the access model, so nobody keeps an old
session without it), and cannot remove their last second factor (an
authenticator app or a security key / passkey: `FACTORS`); they can replace
their authenticator app (`ReplaceTOTPView`) without ever being without one.
"""

from __future__ import annotations

from collections import defaultdict

from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.base import forms as allauth_base_forms
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.forms import ActivateTOTPForm
from allauth.mfa.totp.internal import auth as totp_auth
from allauth.mfa.totp.views import ActivateTOTPView
from allauth.mfa.webauthn import forms as webauthn_forms
from allauth.mfa.webauthn import views as webauthn_views
from django import forms
from django.conf import settings
from django.db import transaction
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy
from django.views.generic.edit import FormView

from accounts.audit import Actor, AuditAction, audit

# The authenticator kinds that count as a second factor (recovery codes are
# a fallback for one, not one of their own): an authenticator app, and
# security keys and passkeys (WebAuthn).
FACTORS = (Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN)


def _required_permissions() -> frozenset[str]:
    """Everything the MFA-required groups give (each group on its own)."""
    from accounts.delegation import GroupRoles, permissions_of

    rules = defaultdict(list)
    rows = GroupRoles.objects.filter(group__name__in=settings.IAM_MFA_REQUIRED_GROUPS)
    for group_id, effect, pattern in rows.values_list(
        "group_id", "role__rules__effect", "role__rules__pattern"
    ):
        if pattern:
            rules[group_id].append((effect, pattern))
    return frozenset().union(*(permissions_of(r) for r in rules.values()))


def mfa_required(user) -> bool:
    """In an MFA-required group, or holding any permission one of them gives."""
    from accounts.delegation import user_potential_permissions

    groups = settings.IAM_MFA_REQUIRED_GROUPS
    if not groups:
        return False
    if user.memberships.current().filter(group__name__in=groups).exists():
        return True
    return bool(user_potential_permissions(user.pk) & _required_permissions())


# Where a forced set-up (accounts.middleware) interrupted the user: the
# recovery codes page, its last step, offers "Continue" to it.
SETUP_NEXT = "iam_mfa_setup_next"


def has_factor(user) -> bool:
    return Authenticator.objects.filter(user=user, type__in=FACTORS).exists()


def setup_required(user, *, vouched_by_idp: bool = False) -> bool:
    """MFA required (`mfa_required`), no second factor, and not vouched for
    by an SSO provider that did MFA (`amr`)."""
    return not vouched_by_idp and mfa_required(user) and not has_factor(user)


LAST_FACTOR_REFUSED = gettext_lazy(
    "Your account must use two-factor authentication, so it cannot be turned off: "
    "your last second factor stays. Add another one first (an authenticator app "
    "or a security key), or replace the authenticator app."
)


def required_reason(user) -> str:
    """Why the policy covers `user`, in words that are true for them: a
    member of a required group is told so; someone covered only by a
    permission such a group gives is told that, not "your group"."""
    from django.utils.translation import gettext as _

    groups = settings.IAM_MFA_REQUIRED_GROUPS
    if user.memberships.current().filter(group__name__in=groups).exists():
        return _("Your group requires two-factor authentication.")
    return _(
        "Accounts with rights like those of %(groups)s must use two-factor authentication."
    ) % {"groups": ", ".join(groups)}


class MFAAdapter(DefaultMFAAdapter):
    error_messages = {
        **DefaultMFAAdapter.error_messages,
        "cannot_delete_authenticator": LAST_FACTOR_REFUSED,
    }

    def can_delete_authenticator(self, authenticator: Authenticator) -> bool:
        """The last second factor (of any kind) of a user the policy covers
        stays. Callers that delete hold `lock_factors` first."""
        if authenticator.type not in FACTORS or not mfa_required(authenticator.user):
            return True
        others = Authenticator.objects.filter(user_id=authenticator.user_id, type__in=FACTORS)
        return others.exclude(pk=authenticator.pk).exists()


class SetupTOTPForm(ActivateTOTPForm):
    """allauth draws a new secret on every visit of the set-up page, so a
    user who scanned the QR code, opened another page and came back would
    type codes of a secret that is no longer the one asked for. The secret
    stays in the session until the set-up succeeds (allauth then drops it)."""

    def __init__(self, *args, **kwargs) -> None:
        self.user = kwargs.pop("user")
        forms.Form.__init__(self, *args, **kwargs)
        self.secret = totp_auth.get_totp_secret(regenerate=False)
        self.fields["code"].label = CODE_LABEL


# Our words for allauth's fields (sentence case, no "Passwordless").
CODE_LABEL = gettext_lazy("Code from your authenticator app")
NAME_LABEL = gettext_lazy("Name")
PASSKEY_LABEL = gettext_lazy("Passkey: log in with this key alone, without a password")
PASSKEY_HELP = gettext_lazy(
    "The key then asks for its PIN or fingerprint. Leave it off for a key that only "
    "confirms your password login."
)


class AuthenticateForm(allauth_base_forms.AuthenticateForm):
    """The code of the login's second step (an app's code or a recovery code)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["code"].label = CODE_LABEL
        self.fields["code"].help_text = gettext_lazy("Or one of your recovery codes.")
        self.fields["code"].widget.attrs.pop("placeholder", None)


class ReauthenticateForm(allauth_base_forms.ReauthenticateForm):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["code"].label = CODE_LABEL
        self.fields["code"].help_text = gettext_lazy("Or one of your recovery codes.")
        self.fields["code"].widget.attrs.pop("placeholder", None)


class EditWebAuthnForm(webauthn_forms.EditWebAuthnForm):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["name"].label = NAME_LABEL


def lock_factors(user) -> None:
    """Inside a transaction: removals of one user's factors wait for each
    other, so two at once cannot both see "another one remains" and leave
    none (the user's row is the lock; SQLite writes one at a time anyway)."""
    from accounts.models import User

    User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).first()


def factor_removal(view):
    """Wraps a view that removes a factor (allauth's TOTP deactivation, our
    security-key removal): its POST runs in one transaction holding
    `lock_factors`, so the check and the delete see the same factors."""
    from functools import wraps

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method != "POST" or not request.user.is_authenticated:
            return view(request, *args, **kwargs)
        with transaction.atomic():
            lock_factors(request.user)
            return view(request, *args, **kwargs)

    return wrapper


class RemoveWebAuthnView(webauthn_views.RemoveWebAuthnView):
    """allauth's removal of a security key or passkey, under the policy:
    the last second factor of a user it covers is refused (409, with why),
    and the page does not offer what would be refused."""

    template_name = "mfa/webauthn/authenticator_confirm_delete.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["refused"] = None
        if not MFAAdapter().can_delete_authenticator(self.object):
            context["refused"] = LAST_FACTOR_REFUSED
        return context

    def form_valid(self, form):
        if not MFAAdapter().can_delete_authenticator(self.object):
            context = self.get_context_data(object=self.object)
            return self.render_to_response(context, status=409)
        return super().form_valid(form)


class AddWebAuthnForm(webauthn_forms.AddWebAuthnForm):
    """allauth's, without "Passwordless" for an SSO-only account: a key it
    adds itself is a second factor, never a way in that the identity
    provider cannot switch off (accounts.login.passkey_login refuses it too)."""

    def __init__(self, *args, **kwargs):
        from accounts.extensions import no_self_service_password

        super().__init__(*args, **kwargs)
        self.fields["name"].label = NAME_LABEL
        if no_self_service_password(self.user):
            self.fields.pop("passwordless", None)
        elif "passwordless" in self.fields:
            self.fields["passwordless"].label = PASSKEY_LABEL
            self.fields["passwordless"].help_text = PASSKEY_HELP

    def clean(self) -> dict:
        """allauth's passwordless flag is what the browser reported about a
        discoverable credential (credProps.rk), whichever box was ticked:
        a key registered as a second factor records it as off, so that
        "Log in with a passkey" refuses it (accounts.login.passkey_login)."""
        cleaned = super().clean()
        credential = cleaned.get("credential")
        if isinstance(credential, dict) and not cleaned.get("passwordless"):
            extensions = credential.get("clientExtensionResults")
            extensions = extensions if isinstance(extensions, dict) else {}
            props = extensions.get("credProps")
            props = props if isinstance(props, dict) else {}
            props = {**props, "rk": False}
            credential["clientExtensionResults"] = {**extensions, "credProps": props}
        return cleaned


class LoginWebAuthnForm(webauthn_forms.LoginWebAuthnForm):
    """allauth's "Log in with a passkey" form: a credential missing one of
    its members (or not an object at all) is refused like a wrong key,
    where python-fido2's parser would raise a KeyError (an anonymous 500)."""

    def clean_credential(self):
        from allauth.mfa.adapter import get_adapter as get_mfa_adapter

        try:
            return super().clean_credential()
        except (KeyError, AttributeError, TypeError, ValueError, IndexError):
            raise get_mfa_adapter().validation_error("incorrect_code") from None


class ListWebAuthnView(webauthn_views.ListWebAuthnView):
    """allauth's list, with which key may be removed (no humanize here)."""

    template_name = "mfa/webauthn/authenticator_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        adapter = MFAAdapter()
        context["rows"] = [
            (a, adapter.can_delete_authenticator(a)) for a in context["authenticators"]
        ]
        context["all_removable"] = all(removable for _, removable in context["rows"])
        return context


class ReplaceTOTPView(ActivateTOTPView):
    """A new authenticator app in place of the old one: the new app's code
    must be right before the old secret is dropped, in one transaction."""

    template_name = "mfa/totp/replace_form.html"

    def dispatch(self, request, *args, **kwargs):
        if not Authenticator.objects.filter(
            user=request.user, type=Authenticator.Type.TOTP
        ).exists():
            return HttpResponseRedirect(reverse("mfa_activate_totp"))
        # FormView's dispatch: allauth's sends anyone who has TOTP away.
        return FormView.dispatch(self, request, *args, **kwargs)

    def form_valid(self, form):
        with transaction.atomic():
            Authenticator.objects.filter(
                user=self.request.user, type=Authenticator.Type.TOTP
            ).delete()
            response = super().form_valid(form)
        audit(
            AuditAction.MFA_REPLACED,
            by=Actor.of(self.request),
            target=self.request.user,
            details={"type": "totp"},
        )
        return response

    def get_success_url(self) -> str:
        return reverse("backoffice:account")
