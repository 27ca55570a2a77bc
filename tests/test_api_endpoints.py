"""The JSON API under /api/v1/, through HTTP with Django's test client (the
tokens come from the token endpoint): the same resources and delegation
rules as the screens, scopes that only narrow, JSON errors everywhere."""

import json

import pytest
from django.test import Client as Http

from accounts import services as account_services
from accounts.audit import Actor
from accounts.models import AuditEvent, Group, User
from tests.api_support import account_token, bearer
from tests.factories import GroupFactory, RoleFactory, RuleFactory, UserFactory
from tests.support.people import admin_with

pytestmark = pytest.mark.django_db


@pytest.fixture
def http():
    return Http()


@pytest.fixture
def root(db):
    return UserFactory(email="root@shop.example", first_name="Grace", groups=["root"])


def get(http, token, path, **params):
    return http.get(f"/api/v1/{path}", params, **bearer(token))


def send(http, token, method, path, body):
    return getattr(http, method)(
        f"/api/v1/{path}", json.dumps(body), content_type="application/json", **bearer(token)
    )


def refusals(**filters):
    return AuditEvent.objects.filter(action="access.grant_refused", **filters)


class TestReads:
    def test_me_names_the_account_and_what_this_token_may_do(self, http, root):
        token = account_token(http, root, scopes=["read", "write"], scope="read")
        me = get(http, token, "me").json()
        assert me["email"] == "root@shop.example" and me["groups"] == ["root"]
        assert "backoffice:users:delete" in me["permissions"]
        assert "backoffice:users:delete" not in me["token"]["permissions"]
        assert "backoffice:users:view" in me["token"]["permissions"]

    def test_users_with_the_screens_filters_and_pages(self, http, root):
        support = GroupFactory(name="support")
        for n in range(55):
            UserFactory(email=f"u{n:02}@shop.example", groups=[support] if n < 3 else [])
        UserFactory(email="blocked@shop.example", status="blocked", last_name="Zed")
        token = account_token(http, root)
        first = get(http, token, "users").json()
        assert first["count"] == 57 and first["pages"] == 2 and len(first["results"]) == 50
        assert first["next"].endswith("page=2") and first["previous"] is None
        assert (
            get(http, token, "users", page=2).json()["results"][-1]["email"] == "u54@shop.example"
        )
        found = get(http, token, "users", group=support.pk, sort="-email").json()["results"]
        assert [u["email"] for u in found] == ["u02@shop.example", "u01@shop.example",
                                               "u00@shop.example"]  # fmt: skip
        assert found[0]["groups"] == ["support"]
        blocked = get(http, token, "users", status="blocked", q="zed").json()["results"]
        assert [u["email"] for u in blocked] == ["blocked@shop.example"]
        one = get(http, token, f"users/{root.pk}").json()
        assert one["email"] == root.email and one["status"] == "active"

    @pytest.mark.parametrize(
        "params",
        [{"status": "gone"}, {"sort": "password"}, {"group": "x"}, {"group": 999999},
         {"page": 0}, {"q": "x" * 101}],
    )  # fmt: skip
    def test_a_bad_filter_is_a_json_400(self, http, root, params):
        response = get(http, account_token(http, root), "users", **params)
        assert response.status_code == 400 and response.json()["error"] == "invalid_request"

    def test_groups_roles_and_audit(self, http, root):
        token = account_token(http, root)
        groups = get(http, token, "groups").json()["results"]
        assert {"name": "root", "roles": ["administrator"]}.items() <= next(
            g for g in groups if g["name"] == "root"
        ).items()
        roles = get(http, token, "roles").json()["results"]
        assert next(r for r in roles if r["name"] == "administrator")["rules"] == ["allow *:*:*"]
        audit = get(http, token, "audit", action="api.token").json()
        assert audit["results"][0]["action"] == "api.token.issued"
        bad = get(http, token, "audit", since="2020-02-02", until="2020-01-01")
        assert bad.status_code == 400


class TestScopesOnlyNarrow:
    def test_a_read_token_of_root_cannot_write(self, http, root):
        token = account_token(http, root, scopes=["read"])
        body = {"email": "new@shop.example", "first_name": "N", "last_name": "W"}
        response = send(http, token, "post", "users", body)
        assert response.status_code == 403 and response.json()["error"] == "insufficient_scope"
        assert not User.objects.filter(email="new@shop.example").exists()

    def test_a_resource_scope_opens_that_resource_only(self, http, root):
        token = account_token(http, root, scopes=["backoffice:users:view"])
        assert get(http, token, "users").status_code == 200
        assert get(http, token, "groups").json()["error"] == "insufficient_scope"

    def test_no_scope_reaches_beyond_the_account(self, http):
        viewer = admin_with("backoffice:users:view", name="viewers")
        token = account_token(http, viewer, scopes=["read", "write"])
        assert get(http, token, "users").status_code == 200
        response = get(http, token, "groups")
        assert response.status_code == 403 and response.json()["error"] == "forbidden"

    def test_delegation_bounds_apply_to_the_narrowed_set(self, http, root):
        """A write-only token of root cannot act on a user who holds view
        rights: within its scopes, that user is above it."""
        viewer = admin_with("backoffice:users:view", name="viewers")
        write_only = account_token(http, root, scopes=["write"])
        response = send(http, write_only, "patch", f"users/{viewer.pk}", {"first_name": "X"})
        assert (
            response.status_code == 403
            and "backoffice:users:view" in response.json()["error_description"]
        )
        both = account_token(http, root, scopes=["read", "write"])
        assert (
            send(http, both, "patch", f"users/{viewer.pk}", {"first_name": "X"}).json()[
                "first_name"
            ]
            == "X"
        )

    def test_a_token_without_block_scope_cannot_block_even_for_root(self, http, root):
        target = UserFactory(email="t@shop.example")
        token = account_token(http, root, scopes=["read", "backoffice:users:edit"])
        response = send(http, token, "patch", f"users/{target.pk}", {"status": "blocked"})
        assert response.status_code == 403
        target.refresh_from_db()
        assert target.is_active


class TestDelegationThroughTheApi:
    def test_user_editor_cannot_put_themself_in_root(self, http):
        editor = admin_with("backoffice:users:view", "backoffice:users:edit", name="editors")
        token = account_token(http, editor)
        response = send(http, token, "patch", f"users/{editor.pk}",
                        {"groups": ["editors", "root"]})  # fmt: skip
        assert response.status_code == 403
        assert "You cannot give group root" in response.json()["error_description"]
        assert not editor.groups.filter(name="root").exists()
        assert refusals(target_label=editor.email, actor=editor).exists()

    def test_user_editor_cannot_edit_someone_above_them(self, http, root):
        editor = admin_with("backoffice:users:view", "backoffice:users:edit", name="editors")
        token = account_token(http, editor)
        response = send(http, token, "patch", f"users/{root.pk}", {"first_name": "Mallory"})
        assert (
            response.status_code == 403
            and "holds permissions you do not" in response.json()["error_description"]
        )
        root.refresh_from_db()
        assert root.first_name == "Grace"

    def test_a_creator_cannot_create_an_account_in_root(self, http):
        creator = admin_with("backoffice:users:view", "backoffice:users:create", name="hr")
        token = account_token(http, creator)
        body = {"email": "mallory@shop.example", "first_name": "M", "last_name": "M",
                "groups": ["root"]}  # fmt: skip
        assert send(http, token, "post", "users", body).status_code == 403
        assert not User.objects.filter(email="mallory@shop.example").exists()
        body["groups"] = ["backoffice-users"]
        created = send(http, token, "post", "users", body)
        assert created.status_code == 201 and created.json()["groups"] == ["backoffice-users"]
        assert AuditEvent.objects.get(action="user.created").details["via"] == "api"

    def test_blocking_needs_block_and_not_edit(self, http):
        blocker = admin_with("backoffice:users:view", "backoffice:users:block", name="blockers")
        target = UserFactory(email="t@shop.example")
        token = account_token(http, blocker)
        assert (
            send(http, token, "patch", f"users/{target.pk}", {"first_name": "X"}).status_code == 403
        )
        blocked = send(http, token, "patch", f"users/{target.pk}", {"status": "blocked"})
        assert blocked.status_code == 200 and blocked.json()["status"] == "blocked"

    def test_nobody_blocks_themselves_nor_the_last_manager(self, http, root):
        token = account_token(http, root)
        response = send(http, token, "patch", f"users/{root.pk}", {"status": "blocked"})
        assert response.status_code == 409 and response.json()["error"] == "conflict"
        response = send(http, token, "patch", f"users/{root.pk}", {"groups": []})
        assert response.status_code == 409
        assert root.groups.filter(name="root").exists()

    def test_a_permission_change_applies_on_the_next_call(self, http, root):
        viewer = admin_with("backoffice:users:view", name="viewers")
        token = account_token(http, viewer)
        assert get(http, token, "users").status_code == 200
        account_services.user_update(
            user=viewer, email=viewer.email, first_name=viewer.first_name,
            last_name=viewer.last_name, groups=[], active=True, by=Actor(user=root),
        )  # fmt: skip
        assert get(http, token, "users").status_code == 403

    def test_create_reports_bad_input_and_duplicates(self, http, root):
        token = account_token(http, root)
        bad = send(http, token, "post", "users", {"email": "nope", "first_name": "A",
                                                  "last_name": "B"})  # fmt: skip
        assert bad.status_code == 400 and "not a valid email" in bad.json()["error_description"]
        dup = send(http, token, "post", "users", {"email": "ROOT@shop.example", "first_name": "A",
                                                  "last_name": "B"})  # fmt: skip
        assert dup.status_code == 409
        missing = send(http, token, "post", "users", {"email": "a@shop.example"})
        assert missing.status_code == 400 and "first_name" in missing.json()["fields"]
        body = {"email": "a@shop.example", "first_name": "A", "last_name": "B", "groups": ["x"]}
        unknown = send(http, token, "post", "users", body)
        assert unknown.status_code == 400 and "groups" in unknown.json()["fields"]


class TestJsonErrors:
    def test_no_or_a_bad_token_is_401_with_a_bearer_challenge(self, http):
        response = http.get("/api/v1/users")
        assert response.status_code == 401 and response.json()["error"] == "invalid_token"
        assert response["WWW-Authenticate"].startswith("Bearer")
        response = http.get("/api/v1/users", **bearer("forged"))
        assert response.status_code == 401 and response["Content-Type"] == "application/json"

    def test_a_token_in_the_query_string_is_not_accepted(self, http, root):
        token = account_token(http, root)
        assert http.get(f"/api/v1/me?access_token={token}").status_code == 401

    @pytest.mark.parametrize(
        ("method", "path", "status"),
        [("get", "/api/v1/nothing", 404), ("delete", "/api/v1/users/1", 405),
         ("get", "/api/v1/users/99999999999999999999", 404), ("get", "/oauth/token/", 405),
         ("get", "/oauth/introspect/", 405), ("put", "/api/v1/me", 405)],
    )  # fmt: skip
    def test_every_error_is_json(self, http, root, method, path, status):
        response = getattr(http, method)(path, **bearer(account_token(http, root)))
        assert response.status_code == status
        assert response["Content-Type"].startswith("application/json")
        assert "error" in response.json()

    def test_bad_bodies(self, http, root):
        token = account_token(http, root)
        broken = http.post("/api/v1/users", "{", content_type="application/json", **bearer(token))
        assert broken.status_code == 400 and broken.json()["error"] == "invalid_request"
        form = http.post("/api/v1/users", {"email": "x"}, **bearer(token))
        assert form.status_code == 415 and form.json()["error"] == "unsupported_media_type"
        listed = send(http, token, "patch", f"users/{root.pk}", ["not", "an", "object"])
        assert listed.status_code == 400

    def test_a_person_who_must_set_up_mfa_gets_nothing(self, http, settings):
        settings.IAM_MFA_REQUIRED_GROUPS = ["admins"]
        person = admin_with("backoffice:users:view", name="admins")
        # A person's token (not a service account's): made as the password grant makes it.
        from oauth2_provider.models import AccessToken

        from tests.api_support import make_client

        client, _ = make_client("password")
        AccessToken.objects.create(user=person, application=client, token="t" * 30,
                                   scope="read", expires="2999-01-01T00:00Z")  # fmt: skip
        response = http.get("/api/v1/me", **bearer("t" * 30))
        assert response.status_code == 403 and response.json()["error"] == "mfa_setup_required"


def test_roles_with_denies_and_rank_on_latent_permissions(http, root):
    """Rank looks at what a deny hides too, as in the screens."""
    role = RoleFactory()
    RuleFactory(role=role, effect="allow", pattern="backoffice:roles:*")
    RuleFactory(role=role, effect="deny", pattern="backoffice:roles:delete")
    hidden = UserFactory(email="hidden@shop.example", groups=[GroupFactory(roles=[role])])
    editor = admin_with("backoffice:users:*", "backoffice:roles:view", name="editors")
    token = account_token(http, editor)
    response = send(http, token, "patch", f"users/{hidden.pk}", {"first_name": "X"})
    assert response.status_code == 403
    assert Group.objects.filter(memberships__user=hidden).count() == 1
