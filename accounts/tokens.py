"""Tokens in mailed links: a password reset link lives 1 hour, an invitation
72, the confirmation of a new address 24.

Both password kinds go through the same "set your password" page, so the generator
allauth uses accepts either. Each hashes the user's password hash, last login
and email: the first use (or an email change) kills the link. Unlike
allauth's default generator, these never create EmailAddress rows; the
account's own email field is the only address we know.
"""

from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core import signing
from django.utils.crypto import constant_time_compare
from django.utils.http import base36_to_int

INVITATION_TIMEOUT = 72 * 3600


class InvitationTokens(PasswordResetTokenGenerator):
    key_salt = "iam.tokens.invitation"

    def check_token(self, user, token) -> bool:
        if not (user and token and isinstance(token, str)):
            return False
        try:
            ts = base36_to_int(token.split("-")[0])
        except ValueError:
            return False
        if self._num_seconds(self._now()) - ts > INVITATION_TIMEOUT:
            return False
        return any(
            constant_time_compare(self._make_token_with_timestamp(user, ts, secret), token)
            for secret in [self.secret, *self.secret_fallbacks]
        )


class PasswordResetTokens(PasswordResetTokenGenerator):
    """Reset tokens (PASSWORD_RESET_TIMEOUT); invitation tokens pass too."""

    key_salt = "iam.tokens.password-reset"

    def check_token(self, user, token) -> bool:
        return super().check_token(user, token) or InvitationTokens().check_token(user, token)


# --- the link that confirms a new address ------------------------------------------

# A change of address waits this long for its link (accounts.services.emails).
EMAIL_CHANGE_TIMEOUT = 24 * 3600


class EmailChangeLinks:
    """The token in the link mailed to a new address: signed with the secret
    key, timestamped, and bound to the pending change, the account, the new
    address and the account's address when it was asked for, so the link
    dies when any of them changes (a new request, a cancel, the change
    applied, the address changed some other way)."""

    salt = "iam.tokens.email-change"

    def make(self, change) -> str:
        return signing.dumps(
            {"c": change.pk, "u": change.user_id, "n": change.new_email, "o": change.old_email},
            salt=self.salt,
        )

    def read(self, token: str) -> dict:
        """What a token was made for. signing.SignatureExpired past
        EMAIL_CHANGE_TIMEOUT, signing.BadSignature for anything not made here."""
        data = signing.loads(token, salt=self.salt, max_age=EMAIL_CHANGE_TIMEOUT)
        if not (isinstance(data, dict) and set(data) == {"c", "u", "n", "o"}):
            raise signing.BadSignature("not an email change token")
        if not (isinstance(data["c"], int) and isinstance(data["u"], int)):
            raise signing.BadSignature("not an email change token")
        return data
