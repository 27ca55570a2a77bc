"""The toolkit's request validator, with the Back Office's rules added.

The toolkit (and oauthlib under it) does the protocol: client
authentication with constant-time secret checks, PKCE, codes, rotation of
refresh tokens and revocation of a family whose used refresh token comes
back. This subclass adds only what the Back Office decides:

- client credentials act as the client's own service account, which must be
  active, and only while the holder of the client's secret is (api.principal
  caps every use of the token at what the holder holds then);
- the password grant checks the password through the same backend as the
  login form, refuses accounts that have or must have MFA (they log in
  through the browser: authorization code), and tells the view whether the
  password was right so the login counters are taken back as at login;
- a refresh is refused for a blocked account, and for a password-grant
  token whose account has come to need MFA since;
- a bearer token of a blocked account is refused (its tokens are revoked
  when it is blocked; this holds even for a row a crash left behind);
- a code or refresh token is locked while it is checked and used (the view
  runs those grants in one transaction), so two requests racing with the
  same one cannot both pass: the second sees it used. A refresh token used
  twice ends its family (the toolkit's reuse protection), and a code used
  twice revokes the tokens it gave (RFC 6749 §4.1.2; remembered in the
  cache for CODE_MEMORY_SECONDS after it was redeemed);
- whatever happens is noted for the view's audit event (api.oauth.outcome).
"""

from __future__ import annotations

import hashlib

from django.contrib.auth import authenticate
from django.core.cache import cache
from django.db import transaction
from oauth2_provider.oauth2_validators import GRANT_TYPE_MAPPING, OAuth2Validator
from oauth2_provider.oauth2_validators import AccessToken as AccessTokenModel
from oauth2_provider.oauth2_validators import Grant as GrantModel
from oauth2_provider.oauth2_validators import RefreshToken as RefreshTokenModel
from oauthlib.oauth2.rfc6749 import errors

from accounts.mfa import has_factor, mfa_required
from accounts.selectors import user_get_by_email
from api.oauth.outcome import current, note
from api.principal import secret_refused

MFA_REFUSAL = (
    "This account uses two-factor authentication, so it cannot use the password grant: "
    "use an authorization-code client (the browser login, with MFA)."
)

SECRET_REFUSALS = {
    "account_blocked": "The client's Back Office account is blocked.",
    "secret_holder_gone": "Whoever holds this client's secret is blocked or deleted: "
    "replace the secret.",
}

# How long a redeemed code is remembered, so that its second use revokes
# what the first one gave (a code itself lives 60 seconds).
CODE_MEMORY_SECONDS = 600


def _needs_browser(user) -> bool:
    return has_factor(user) or mfa_required(user)


def _checksum(value) -> str:
    return hashlib.sha256(str(value).encode()).hexdigest()


def _locked(queryset) -> None:
    """Hold the rows until the token request's transaction ends (the view
    opens one for the code and refresh grants): a request racing with the
    same code or refresh token waits here, then finds it used."""
    if transaction.get_connection().in_atomic_block:
        list(queryset.select_for_update().values_list("pk", flat=True))


def _code_key(code) -> str:
    return f"oauth-code-redeemed:{_checksum(code)}"


class Validator(OAuth2Validator):
    # --- clients ---------------------------------------------------------------

    def authenticate_client(self, request, *args, **kwargs):
        ok = super().authenticate_client(request, *args, **kwargs)
        if ok:
            note(client=request.client)
        else:
            note(reason="invalid_client")
        return ok

    def validate_grant_type(self, client_id, grant_type, client, request, *args, **kwargs):
        """The client's one grant (and refresh tokens). The toolkit's version
        warns on every password grant; ours is allowed per client, on purpose."""
        allowed = request.client.allows_grant_type(*GRANT_TYPE_MAPPING.get(grant_type, ()))
        if not allowed:
            note(reason="grant_not_allowed")
            return False
        if grant_type == "client_credentials":
            self._bind_account(request)
        return True

    def _bind_account(self, request) -> None:
        """Client credentials: the token is the client's service account's."""
        client = request.client
        account = client.account if client.account_id else None
        if account is None or not account.is_service:
            note(reason="no_account")
            raise errors.UnauthorizedClientError(
                description="This client has no service account to act as.", request=request
            )
        note(user=account)
        refused = secret_refused(client)
        if refused:
            note(reason=refused)
            raise errors.UnauthorizedClientError(
                description=SECRET_REFUSALS[refused], request=request
            )
        request.user = account

    def _create_access_token(self, expires, request, token, source_refresh_token=None):
        # The toolkit clears request.user for client credentials; ours act as an account.
        if request.grant_type == "client_credentials":
            request.user = request.client.account
        return super()._create_access_token(expires, request, token, source_refresh_token)

    # --- resource owner password -------------------------------------------------

    def validate_user(self, username, password, client, request, *args, **kwargs):
        """The login form's check (the counters are the view's, before this)."""
        outcome = current()
        http_request = outcome.request if outcome is not None else None
        email = str(username or "")[:254]
        user = authenticate(http_request, email=email, password=password or "")
        if user is None:
            known = user_get_by_email(email) if email else None
            blocked = known is not None and not known.is_active
            note(user=known, label=email, reason="blocked" if blocked else "bad_credentials")
            return False
        note(user=user, password_ok=True)
        if _needs_browser(user):
            note(reason="mfa")
            raise errors.InvalidGrantError(description=MFA_REFUSAL, request=request)
        request.user = user
        return True

    # --- codes and refresh tokens ---------------------------------------------------

    def validate_code(self, client_id, code, client, request, *args, **kwargs):
        _locked(GrantModel.objects.filter(code=code, application=client))
        ok = super().validate_code(client_id, code, client, request, *args, **kwargs)
        if ok:
            note(user=request.user)
            if not request.user.is_active:
                note(reason="account_blocked")
                return False
        elif not self._revoke_what_the_code_gave(code, client):
            note(reason="invalid_code")
        return ok

    @staticmethod
    def _revoke_what_the_code_gave(code, client) -> bool:
        """A code redeemed before comes back (RFC 6749 §4.1.2): its tokens,
        and whatever their refresh tokens were rotated into, are revoked."""
        redeemed = cache.get(_code_key(code))
        if not isinstance(redeemed, dict) or redeemed.get("client") != client.pk:
            return False
        cache.delete(_code_key(code))
        if redeemed.get("family"):
            RefreshTokenModel.revoke_family(redeemed["family"])
        AccessTokenModel.objects.filter(token_checksum=redeemed.get("access", "")).delete()
        user = None
        if redeemed.get("user"):
            from accounts.models import User

            user = User.objects.filter(pk=redeemed["user"]).first()
        note(user=user, reason="code_reused", family_revoked=True)
        return True

    def _remember_redeemed_code(self, token, request) -> None:
        refresh = token.get("refresh_token")
        family = None
        if refresh:
            row = RefreshTokenModel.objects.filter(token_checksum=_checksum(refresh)).first()
            family = str(row.token_family) if row is not None and row.token_family else None
        cache.set(
            _code_key(request.code),
            {
                "client": request.client.pk,
                "user": getattr(request.user, "pk", None),
                "family": family,
                "access": _checksum(token.get("access_token", "")),
            },
            CODE_MEMORY_SECONDS,
        )

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs):
        _locked(RefreshTokenModel.objects.filter(token_checksum=_checksum(refresh_token)))
        ok = super().validate_refresh_token(refresh_token, client, request, *args, **kwargs)
        if not ok:
            self._why_refresh_refused(refresh_token, client)
            return False
        user = request.user
        note(user=user)
        if not user.is_active:
            note(reason="account_blocked")
            return False
        if client.grant == client.GRANT_PASSWORD and _needs_browser(user):
            note(reason="mfa")
            raise errors.InvalidGrantError(description=MFA_REFUSAL, request=request)
        return True

    def _why_refresh_refused(self, refresh_token, client) -> None:
        """A refused refresh token that exists was used or revoked before:
        the toolkit has just revoked its whole family (replay)."""
        checksum = hashlib.sha256(str(refresh_token).encode()).hexdigest()
        row = (
            RefreshTokenModel.objects.filter(token_checksum=checksum)
            .select_related("user")
            .order_by("-revoked")
            .first()
        )
        if row is None:
            note(reason="unknown_refresh_token")
        elif row.application_id != client.pk:
            note(reason="other_clients_refresh_token")
        elif row.revoked is not None:
            note(user=row.user, reason="replay", family_revoked=True)
        else:
            note(user=row.user, reason="expired_refresh_token")

    def save_bearer_token(self, token, request, *args, **kwargs):
        result = super().save_bearer_token(token, request, *args, **kwargs)
        if request.grant_type == "authorization_code":
            self._remember_redeemed_code(token, request)
        note(scope=token.get("scope", ""), user=request.user)
        return result

    # --- using and revoking tokens -------------------------------------------------------

    def validate_bearer_token(self, token, scopes, request):
        ok = super().validate_bearer_token(token, scopes, request)
        if ok and request.user is not None and not request.user.is_active:
            request.oauth2_error = {
                "error": "invalid_token",
                "error_description": "The token's account is blocked.",
            }
            return False
        return ok

    def revoke_token(self, token, token_type_hint, request, *args, **kwargs):
        from oauth2_provider.models import AccessToken

        checksum = hashlib.sha256(str(token).encode()).hexdigest()
        mine = {"token_checksum": checksum, "application_id": getattr(request.client, "pk", None)}
        row = (
            AccessToken.objects.filter(**mine).select_related("user").first()
            or RefreshTokenModel.objects.filter(**mine, revoked__isnull=True)
            .select_related("user")
            .first()
        )
        if row is not None:
            note(user=row.user, reason="revoked")
        super().revoke_token(token, token_type_hint, request, *args, **kwargs)
