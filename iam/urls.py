from allauth.mfa.recovery_codes import views as recovery_views
from allauth.mfa.totp import views as totp_views
from allauth.mfa.webauthn import views as webauthn_views
from django.urls import include, path
from django.views.generic import RedirectView

from accounts import mfa as account_mfa
from accounts import views as account_views
from accounts.reauth import recent_authentication_required as recent

urlpatterns = [
    path("login/", account_views.LoginView.as_view(), name="account_login"),
    # Closed doors of allauth: accounts are created by admins only, and the
    # email address is managed by admins (it is the login).
    path("signup/", account_views.not_found),
    path("email/", account_views.not_found),
    path("confirm-email/", account_views.not_found),
    path("confirm-email/<str:key>/", account_views.not_found),
    # The link that confirms a new address (accounts.services.emails).
    path("email/confirm/", account_views.email_change_confirm, name="email_change_confirm"),
    path("email/confirm/<str:token>/", account_views.email_change_link, name="email_change_link"),
    # A local password is set by a reset link (admin-sent for SSO-only
    # accounts), never by a logged-in SSO user on their own.
    path("password/set/", account_views.not_found),
    # Changing MFA, and seeing or downloading recovery codes, needs a recent
    # authentication (password, code or SSO); anonymous visitors are sent to
    # the login page first.
    path("2fa/totp/activate/", recent(totp_views.activate_totp)),
    path("2fa/totp/deactivate/", recent(account_mfa.factor_removal(totp_views.deactivate_totp))),
    path(
        "2fa/totp/replace/", recent(account_mfa.ReplaceTOTPView.as_view()), name="mfa_replace_totp"
    ),
    # Security keys and passkeys (WebAuthn): the same rules (the last second
    # factor of a user the policy covers stays); a passkey login finishes
    # through accounts.login like every login.
    path("2fa/webauthn/", account_mfa.ListWebAuthnView.as_view(), name="mfa_list_webauthn"),
    path("2fa/webauthn/add/", recent(webauthn_views.add_webauthn), name="mfa_add_webauthn"),
    path(
        "2fa/webauthn/keys/<int:pk>/remove/",
        recent(account_mfa.factor_removal(account_mfa.RemoveWebAuthnView.as_view())),
        name="mfa_remove_webauthn",
    ),
    path(
        "2fa/webauthn/keys/<int:pk>/edit/",
        recent(webauthn_views.edit_webauthn),
        name="mfa_edit_webauthn",
    ),
    path(
        "2fa/webauthn/login/",
        account_views.PasskeyLoginView.as_view(),
        name="mfa_login_webauthn",
    ),
    # The MFA step of a login (allauth's), allowing where the login goes on to.
    path(
        "2fa/authenticate/",
        account_views.MfaAuthenticateView.as_view(),
        name="mfa_authenticate",
    ),
    path("2fa/recovery-codes/", recent(recovery_views.view_recovery_codes)),
    path("2fa/recovery-codes/download/", recent(recovery_views.download_recovery_codes)),
    path("2fa/recovery-codes/generate/", recent(recovery_views.generate_recovery_codes)),
    # allauth's own session list needs django.contrib.humanize; ours (with
    # browser and device) lives under My account.
    path("sessions/", RedirectView.as_view(url="/account/sessions/")),
    path("sso/", include("sso.urls")),
    # The language switcher of the login page (Django's set_language: POST, CSRF).
    path("i18n/", include("django.conf.urls.i18n")),
    # The Back Office API: OAuth endpoints (and their RFC 8414 metadata at the
    # root), and the JSON API.
    path("", include("api.oauth.urls", namespace="oauth2_provider")),
    path("api/v1/", include("api.urls")),
    # SCIM 2.0 provisioning from identity providers (bearer token per client).
    path("scim/v2/", include("scim.urls")),
    # The back office first: its pages are the ones opened all day, and the
    # resolver tries patterns in order (no path is shared with allauth's).
    path("", include("backoffice.urls")),
    path("", include("allauth.urls")),
]

handler403 = "backoffice.views.errors.forbidden"
handler404 = "backoffice.views.errors.not_found"
handler500 = "backoffice.views.errors.server_error"
handler429 = "backoffice.views.errors.too_many_requests"  # allauth's rate limits use it
