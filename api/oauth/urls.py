"""The OAuth endpoints. The namespace is the toolkit's, so its metadata view
finds them by name; the metadata itself sits at the origin's root (RFC 8414)."""

from django.urls import path

from api.oauth import views

app_name = "oauth2_provider"

urlpatterns = [
    path(
        ".well-known/oauth-authorization-server",
        views.MetadataView.as_view(),
        name="oauth-server-metadata",
    ),
    path("oauth/authorize/", views.AuthorizeView.as_view(), name="authorize"),
    path("oauth/token/", views.TokenView.as_view(), name="token"),
    path("oauth/revoke/", views.RevokeView.as_view(), name="revoke-token"),
    path("oauth/introspect/", views.IntrospectView.as_view(), name="introspect"),
]
