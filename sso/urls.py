from django.urls import path

from sso import logout_views, views
from sso.saml import views as saml_views

app_name = "sso"

urlpatterns = [
    path("link/", views.link, name="link"),
    path("link/password/", views.link_with_password, name="link_password"),
    path("link/takeover/", views.link_by_takeover, name="link_takeover"),
    path("link/cancel/", views.link_cancel, name="link_cancel"),
    path("<slug:provider_id>/login/", views.login, name="login"),
    path("<slug:provider_id>/callback/", views.callback, name="callback"),
    path("<slug:provider_id>/reauthenticate/", views.reauthenticate, name="reauthenticate"),
    path("<slug:provider_id>/logout/", logout_views.continue_logout, name="logout"),
    path("<slug:provider_id>/saml/acs/", saml_views.acs, name="saml_acs"),
    path("<slug:provider_id>/saml/slo/", saml_views.slo, name="saml_slo"),
    path("<slug:provider_id>/saml/metadata/", saml_views.metadata, name="saml_metadata"),
    path(
        "<slug:provider_id>/backchannel-logout/",
        logout_views.backchannel_logout,
        name="backchannel_logout",
    ),
    path(
        "<slug:provider_id>/frontchannel-logout/",
        logout_views.frontchannel_logout,
        name="frontchannel_logout",
    ),
]
