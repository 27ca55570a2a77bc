"""Property-based bad input over every form: never a 500, never a change
that the input did not earn."""

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Group, Role, User
from tests.conftest import login
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
text = st.text(max_size=300)
junk = st.one_of(
    text,
    st.just(""),
    st.just("x" * 5000),
    st.sampled_from(
        [
            "'; DROP TABLE accounts_user; --",
            "<script>alert(1)</script>",
            "\x00",
            "ROOT",
            "*:*:*",
            "allow *:*:*",
            "a@b.c",
            "999999999999999999999",
            "-1",
            "../../etc/passwd",
        ]
    ),
)


def fields(*names):
    return st.fixed_dictionaries({name: junk for name in names})


def no_server_error(response):
    assert response.status_code < 500, response.status_code


@FUZZ
@given(data=fields("login", "password", "next"))
def test_login_form(client, data):
    no_server_error(client.post("/login/", data))
    assert "_auth_user_id" not in client.session


@FUZZ
@given(data=fields("email"))
def test_password_reset_form(client, data):
    no_server_error(client.post("/password/reset/", data))


@FUZZ
@given(
    data=fields(
        "first_name",
        "last_name",
        "email",
        "status",
        "password_mode",
        "password1",
        "password2",
        "groups",
    )
)
def test_user_create_form(admin, data):
    before = User.objects.count()
    response = admin.post("/users/add/", data)
    no_server_error(response)
    if response.status_code != 302:
        assert User.objects.count() == before


@FUZZ
@given(data=fields("first_name", "last_name", "email", "status", "groups"))
def test_user_edit_form(admin, root_user, data):
    no_server_error(admin.post(f"/users/{root_user.pk}/", data))
    root_user.refresh_from_db()
    assert root_user.is_active and root_user.groups.filter(name="root").exists()


@FUZZ
@given(data=fields("name", "description", "roles"))
def test_group_form(admin, data):
    no_server_error(admin.post("/groups/add/", data))
    root = Group.objects.get(name="root")
    no_server_error(admin.post(f"/groups/{root.pk}/", data))
    assert root.roles.filter(name="administrator").exists()


@FUZZ
@given(data=fields("name", "description", "rules"))
def test_role_form(admin, data):
    no_server_error(admin.post("/roles/add/", data))
    role = Role.objects.get(name="administrator")
    no_server_error(admin.post(f"/roles/{role.pk}/", data))
    assert role.rules.filter(effect="allow", pattern="*:*:*").exists()


@FUZZ
@given(query=fields("q", "status", "group", "sort", "page"))
def test_users_list_filters(admin, query):
    no_server_error(admin.get("/users/", query))


@FUZZ
@given(query=fields("actor", "action", "target", "since", "until", "page"))
def test_audit_filters_and_export(admin, query):
    no_server_error(admin.get("/audit/", query))
    no_server_error(admin.get("/audit/export.csv", query))


@FUZZ
@given(data=fields("oldpassword", "password1", "password2"))
def test_password_change_form(data):
    user = UserFactory()
    client = Client()
    login(client, user.email, PASSWORD)
    no_server_error(client.post("/password/change/", data))


@FUZZ
@given(params=fields("code", "state", "error", "iss"))
def test_sso_callback_query(client, settings, params):
    settings.IAM_SSO_PROVIDERS = {
        "fake": {
            "id": "fake",
            "kind": "oidc",
            "name": "Fake",
            "client_id": "c",
            "client_secret": "s",
            "issuer": "http://127.0.0.1:9/realm",
            "tenant": "",
            "authority": "",
            "scopes": ["openid"],
            "role_claim": "roles",
            "role_map": "{}",
            "strategy": "pre-registered",
            "allowed_tenants": [],
        }
    }
    no_server_error(client.get("/sso/fake/callback/", params))
    assert "_auth_user_id" not in client.session


@settings(max_examples=25, deadline=None)
@given(email=junk, first=junk, last=junk, group=junk, password=junk)
def test_createuser_command(email, first, last, group, password):
    import io

    from django.core.management import call_command
    from django.core.management.base import CommandError

    before = User.objects.count()
    stdin = io.StringIO(password + "\n")
    import sys

    old, sys.stdin = sys.stdin, stdin
    try:
        call_command(
            "createuser",
            "--email",
            email,
            "--first-name",
            first,
            "--last-name",
            last,
            "--group",
            group,
            "--password-stdin",
        )
    except CommandError as error:
        assert "\n" not in str(error).strip()
        assert User.objects.count() == before
    finally:
        sys.stdin = old
