from django.urls import path, register_converter
from drf_spectacular.views import SpectacularAPIView

from api import schema, views  # noqa: F401  (schema registers the security scheme)

app_name = "api"


class IdConverter:
    """A database id: 1 to 18 digits (larger ones are a 404, never a 500)."""

    regex = "[0-9]{1,18}"

    def to_python(self, value):
        return int(value)

    def to_url(self, value):
        return str(value)


register_converter(IdConverter, "api_id")

urlpatterns = [
    path("me", views.MeView.as_view(), name="me"),
    path("users", views.UsersView.as_view(), name="users"),
    path("users/<api_id:pk>", views.UserView.as_view(), name="user"),
    path("groups", views.GroupsView.as_view(), name="groups"),
    path("roles", views.RolesView.as_view(), name="roles"),
    path("audit", views.AuditView.as_view(), name="audit"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
]
