from django.urls import path, register_converter

from backoffice.views import (
    access_requests,
    account,
    api_clients,
    audit,
    dashboard,
    groups,
    reviews,
    roles,
    users,
)

app_name = "backoffice"


class IdConverter:
    """A database id: 1 to 18 digits, so no URL can ask for a number the
    database cannot hold (a 404, not a 500)."""

    regex = "[0-9]{1,18}"

    def to_python(self, value):
        return int(value)

    def to_url(self, value):
        return str(value)


register_converter(IdConverter, "id")

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("account/", account.account, name="account"),
    path("account/language/", account.language, name="account-language"),
    path(
        "account/email-change/cancel/",
        account.email_change_cancel,
        name="account-email-change-cancel",
    ),
    path("account/sessions/", account.sessions, name="account-sessions"),
    path("account/sessions/<id:pk>/end/", account.session_end, name="account-session-end"),
    path(
        "account/sessions/end-others/",
        account.sessions_end_others,
        name="account-sessions-end-others",
    ),
    path("users/", users.user_list, name="users"),
    path("users/add/", users.user_create, name="user-create"),
    path("users/<id:pk>/", users.user_details, name="user-edit"),
    path("users/<id:pk>/view/", users.user_detail, name="user-detail"),
    path("users/<id:pk>/groups/", users.user_groups, name="user-groups"),
    path("users/<id:pk>/security/", users.user_security, name="user-security"),
    path("users/<id:pk>/sessions/", users.user_sessions, name="user-sessions"),
    path("users/<id:pk>/events/", users.user_events, name="user-events"),
    path("users/<id:pk>/block/", users.user_block, name="user-block"),
    path("users/<id:pk>/unblock/", users.user_unblock, name="user-unblock"),
    path("users/<id:pk>/delete/", users.user_delete, name="user-delete"),
    path("users/<id:pk>/password-reset/", users.user_password_reset, name="user-password-reset"),
    path("users/<id:pk>/mfa-reset/", users.user_mfa_reset, name="user-mfa-reset"),
    path(
        "users/<id:pk>/email-change/cancel/",
        users.user_email_change_cancel,
        name="user-email-change-cancel",
    ),
    path("groups/", groups.group_list, name="groups"),
    path("groups/add/", groups.group_create, name="group-create"),
    path("groups/<id:pk>/", groups.group_edit, name="group-edit"),
    path("groups/<id:pk>/delete/", groups.group_delete, name="group-delete"),
    path("roles/", roles.role_list, name="roles"),
    path("roles/add/", roles.role_create, name="role-create"),
    path("roles/<id:pk>/", roles.role_edit, name="role-edit"),
    path("roles/<id:pk>/delete/", roles.role_delete, name="role-delete"),
    path("audit/", audit.audit_list, name="audit"),
    path("audit/export.csv", audit.audit_export, name="audit-export"),
]

urlpatterns += [
    path("api-clients/", api_clients.client_list, name="api-clients"),
    path("api-clients/add/", api_clients.client_create, name="api-client-create"),
    path("api-clients/<id:pk>/", api_clients.client_edit, name="api-client-edit"),
    path("api-clients/<id:pk>/secret/", api_clients.client_secret, name="api-client-secret"),
    path("api-clients/<id:pk>/delete/", api_clients.client_delete, name="api-client-delete"),
]

urlpatterns += [
    path(
        "users/<id:pk>/identities/<id:identity_pk>/unlink/",
        users.user_identity_unlink,
        name="user-identity-unlink",
    ),
]

# Privileged access on demand (accounts.services.privileged).
urlpatterns += [
    path("access/request/", access_requests.access_request, name="access-request"),
    path("access/mine/", access_requests.access_mine, name="access-mine"),
    path("access/mine/<id:pk>/withdraw/", access_requests.access_withdraw, name="access-withdraw"),
    path("access/mine/<id:pk>/end/", access_requests.access_end, name="access-end"),
    path("access/approvals/", access_requests.access_approvals, name="access-approvals"),
    path(
        "access/approvals/<id:pk>/approve/",
        access_requests.access_approve,
        name="access-approve",
    ),
    path("access/approvals/<id:pk>/deny/", access_requests.access_deny, name="access-deny"),
]

# Access reviews (reviews.services).
urlpatterns += [
    path("reviews/", reviews.review_list, name="reviews"),
    path("reviews/new/", reviews.review_create, name="review-create"),
    path("reviews/mine/", reviews.reviews_mine, name="reviews-mine"),
    path("reviews/<id:pk>/", reviews.review_detail, name="review"),
    path("reviews/<id:pk>/decide/", reviews.review_decide, name="review-decide"),
    path("reviews/<id:pk>/stop/", reviews.review_stop, name="review-stop"),
    path("reviews/<id:pk>/apply/", reviews.review_apply, name="review-apply"),
    path("reviews/<id:pk>/report.csv", reviews.review_report_csv, name="review-report-csv"),
    path("reviews/<id:pk>/report.json", reviews.review_report_json, name="review-report-json"),
    path("reviews/items/<id:pk>/decide/", reviews.item_decide, name="review-item-decide"),
]
