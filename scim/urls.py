from django.urls import path, re_path

from scim import views

app_name = "scim"

urlpatterns = [
    path("ServiceProviderConfig", views.service_provider_config),
    path("ResourceTypes", views.resource_types),
    path("ResourceTypes/<str:name>", views.resource_types),
    path("Schemas", views.schemas),
    path("Schemas/<str:schema_id>", views.schemas),
    path(".search", views.search_everything),
    path("Users", views.users),
    path("Users/.search", views.users_search),
    path("Users/<str:pk>", views.user),
    path("Groups", views.groups),
    path("Groups/.search", views.groups_search),
    path("Groups/<str:pk>", views.group),
    # Everything else under /scim/v2/ answers in SCIM's JSON too.
    re_path(r"^(?P<rest>.*)$", views.not_found),
]
