"""allauth's "Forgot password?" form, without a lookup in the request."""

from allauth.account.adapter import get_adapter
from allauth.account.forms import ResetPasswordForm as AllauthResetPasswordForm
from django.core.exceptions import ValidationError

from accounts import mail


class ResetPasswordForm(AllauthResetPasswordForm):
    """The request does the same work whatever the address: it queues one
    task with the address typed, and the mail worker looks the account up
    (accounts.mail). allauth's form looked it up here and built and sent the
    mail in the request, so a known address took measurably longer."""

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip()
        if len(email) > 254:  # no account has a longer one (RFC 5321); not worth a task
            raise ValidationError("Enter a valid email address.", code="invalid")
        return get_adapter().clean_email(email)

    def save(self, request, **kwargs) -> str:
        email = self.cleaned_data["email"]
        mail.queue_reset_request(request=request, email=email)
        return email
