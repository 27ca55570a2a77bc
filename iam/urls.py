from django.urls import include, path

from accounts import views as account_views

urlpatterns = [
    path("login/", account_views.LoginView.as_view(), name="account_login"),
    # Closed doors of allauth: accounts are created by admins only, and the
    # email address is managed by admins (it is the login).
    path("signup/", account_views.not_found),
    path("email/", account_views.not_found),
    path("confirm-email/", account_views.not_found),
    path("confirm-email/<str:key>/", account_views.not_found),
    path("sso/", include("sso.urls")),
    path("", include("allauth.urls")),
    path("", include("backoffice.urls")),
]

handler403 = "backoffice.views.errors.forbidden"
handler404 = "backoffice.views.errors.not_found"
handler500 = "backoffice.views.errors.server_error"
