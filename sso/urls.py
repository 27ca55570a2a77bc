from django.urls import path

from sso import views

app_name = "sso"

urlpatterns = [
    path("<slug:provider_id>/login/", views.login, name="login"),
    path("<slug:provider_id>/callback/", views.callback, name="callback"),
    path("<slug:provider_id>/reauthenticate/", views.reauthenticate, name="reauthenticate"),
]
