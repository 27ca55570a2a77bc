"""Password rules of our own, beside Django's validators (settings)."""

from django.contrib.auth.hashers import check_password
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


class NotTheCurrentPasswordValidator:
    """A change must change something: "changing" to the same password would
    end the other sessions and mail the owner while the old secret, perhaps
    the leaked one, stays valid."""

    def validate(self, password, user=None):
        stored = getattr(user, "password", "")
        # hashers.check_password, not user.check_password: no re-hash and
        # save as a side effect of validating.
        if stored and check_password(password, stored):
            raise ValidationError(
                _("The new password is the same as the current one."), code="password_unchanged"
            )

    def get_help_text(self):
        return _("Your new password must differ from the current one.")
