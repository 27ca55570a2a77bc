"""allauth's login and reset forms with our one email key.

allauth's EmailField lower-cases with `str.lower()`, which folds look-alikes
onto ASCII (the Kelvin sign U+212A becomes `k`): `ka…` and `\u212aa…` would be
one address. Here the address is only trimmed and compared by
`accounts.inputs.normalize_email`, so a look-alike matches no account.
"""

from allauth.account import forms as allauth_forms
from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts import mail
from accounts.audit import Actor
from accounts.inputs import MAX_EMAIL, normalize_email


class EmailField(forms.EmailField):
    """Validated as Django does, compared by our key; never `str.lower()`."""

    def __init__(self, **kwargs):
        kwargs.setdefault("label", _("Email"))
        kwargs.setdefault(
            "widget",
            forms.EmailInput(attrs={"autocomplete": "email", "placeholder": _("Email address")}),
        )
        super().__init__(**kwargs)

    def clean(self, value):
        return normalize_email(super().clean(value))


class LoginForm(allauth_forms.LoginForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["login"] = EmailField()


class ResetPasswordForm(allauth_forms.ResetPasswordForm):
    """The request does the same work whatever the address: it queues one
    task with the address typed, and the mail worker looks the account up
    (accounts.mail). allauth's form looked it up here and built and sent the
    mail in the request, so a known address took measurably longer."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["email"] = EmailField()

    def clean_email(self) -> str:
        email = self.cleaned_data["email"]
        if len(email) > MAX_EMAIL:  # no account has a longer one; not worth a task
            raise ValidationError(_("Enter a valid email address."), code="invalid")
        return email

    def save(self, request, **kwargs) -> str:
        email = self.cleaned_data["email"]
        mail.queue_reset_request(by=Actor.of(request), email=email)
        return email


class ChangePasswordForm(allauth_forms.ChangePasswordForm):
    """allauth's, with labels in sentence case."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["oldpassword"].label = _("Current password")
        self.fields["password1"].label = _("New password")
        self.fields["password2"].label = _("New password (again)")
        for name in ("oldpassword", "password1", "password2"):
            self.fields[name].widget.attrs.pop("placeholder", None)
