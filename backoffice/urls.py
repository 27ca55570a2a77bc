from django.urls import path

from backoffice.views import account, audit, dashboard, groups, roles, users

app_name = "backoffice"

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("account/", account.account, name="account"),
    path("account/sessions/", account.sessions, name="account-sessions"),
    path("account/sessions/<int:pk>/end/", account.session_end, name="account-session-end"),
    path(
        "account/sessions/end-others/",
        account.sessions_end_others,
        name="account-sessions-end-others",
    ),
    path("users/", users.user_list, name="users"),
    path("users/add/", users.user_create, name="user-create"),
    path("users/<int:pk>/", users.user_edit, name="user-edit"),
    path("users/<int:pk>/block/", users.user_block, name="user-block"),
    path("users/<int:pk>/unblock/", users.user_unblock, name="user-unblock"),
    path("users/<int:pk>/delete/", users.user_delete, name="user-delete"),
    path("users/<int:pk>/password-reset/", users.user_password_reset, name="user-password-reset"),
    path("users/<int:pk>/mfa-reset/", users.user_mfa_reset, name="user-mfa-reset"),
    path("groups/", groups.group_list, name="groups"),
    path("groups/add/", groups.group_create, name="group-create"),
    path("groups/<int:pk>/", groups.group_edit, name="group-edit"),
    path("groups/<int:pk>/delete/", groups.group_delete, name="group-delete"),
    path("roles/", roles.role_list, name="roles"),
    path("roles/add/", roles.role_create, name="role-create"),
    path("roles/<int:pk>/", roles.role_edit, name="role-edit"),
    path("roles/<int:pk>/delete/", roles.role_delete, name="role-delete"),
    path("audit/", audit.audit_list, name="audit"),
    path("audit/export.csv", audit.audit_export, name="audit-export"),
]

urlpatterns += [
    path(
        "users/<int:pk>/identities/<int:identity_pk>/unlink/",
        users.user_identity_unlink,
        name="user-identity-unlink",
    ),
]
