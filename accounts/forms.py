"""allauth's login and reset forms with our one email key.

allauth's EmailField lower-cases with `str.lower()`, which folds look-alikes
onto ASCII (the Kelvin sign U+212A becomes `k`): `ka…` and `\u212aa…` would be
one address. Here the address is only trimmed and compared by
`accounts.inputs.normalize_email`, so a look-alike matches no account.
"""

from allauth.account import forms as allauth_forms
from django import forms

from accounts.inputs import normalize_email


class EmailField(forms.EmailField):
    """Validated as Django does, compared by our key; never `str.lower()`."""

    def __init__(self, **kwargs):
        kwargs.setdefault("label", "Email")
        kwargs.setdefault(
            "widget",
            forms.EmailInput(attrs={"autocomplete": "email", "placeholder": "Email address"}),
        )
        super().__init__(**kwargs)

    def clean(self, value):
        return normalize_email(super().clean(value))


class LoginForm(allauth_forms.LoginForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["login"] = EmailField()


class ResetPasswordForm(allauth_forms.ResetPasswordForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["email"] = EmailField()

    def clean_email(self) -> str:
        from accounts.selectors import user_get_by_email

        email = self.cleaned_data["email"]
        user = user_get_by_email(email)
        self.users = [user] if user is not None and user.is_active else []
        return email
