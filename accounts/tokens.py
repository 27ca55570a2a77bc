"""Tokens in password links: a reset link lives 1 hour, an invitation 72.

Both kinds go through the same "set your password" page, so the generator
allauth uses accepts either. Each hashes the user's password hash, last login
and email: the first use (or an email change) kills the link. Unlike
allauth's default generator, these never create EmailAddress rows; the
account's own email field is the only address we know.
"""

from django.contrib.auth.tokens import PasswordResetTokenGenerator
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
