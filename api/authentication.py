"""Who calls the API: the bearer token's account, as the toolkit finds it.

On top of the toolkit's check (the token exists, is unexpired, its client is
usable; the validator refuses blocked accounts) one rule of the browser holds
here too: a person who must set MFA up opens nothing until they have, so
their tokens do nothing either. The answer is cached per access stamp of
the account (accounts.access), as the browser session keeps it
(accounts.login), so a request costs no query for it. Client-credentials tokens act for service
accounts, which log in with the client's secret and are not asked for MFA.
"""

from __future__ import annotations

from django.core.cache import cache
from oauth2_provider.contrib.rest_framework import OAuth2Authentication
from rest_framework import exceptions

from accounts.mfa import setup_required

MFA_TTL = 300


class MfaSetupRequired(exceptions.PermissionDenied):
    default_code = "mfa_setup_required"
    default_detail = "This account must set up two-factor authentication in the Back Office first."


def _must_set_up_mfa(user) -> bool:
    key = f"api:mfa:{user.pk}:{user.access_stamp}"
    answer = cache.get(key)
    if answer is None:
        answer = int(setup_required(user))
        cache.set(key, answer, MFA_TTL)
    return bool(answer)


class BearerTokenAuthentication(OAuth2Authentication):
    www_authenticate_realm = "api"

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user, token = result
        client = token.application
        acts_for_person = client is None or client.authorization_grant_type != (
            client.GRANT_CLIENT_CREDENTIALS
        )
        if user is not None and acts_for_person and _must_set_up_mfa(user):
            raise MfaSetupRequired()
        return user, token
