from django.urls import path

from backoffice import views

app_name = "backoffice"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("users/", views.user_list, name="users"),
    path("audit/", views.audit_list, name="audit"),
]
