"""The access model: groups hold roles, roles hold allow/deny rules."""

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from accounts.access import can, compile_rules
from accounts.audit import Actor
from accounts.models import User
from accounts.resources import validate_pattern
from tests.conftest import login
from tests.factories import PASSWORD, GroupFactory, RoleFactory, RuleFactory, UserFactory


class TestRuleLogic:
    def test_allow_and_wildcards(self):
        rules = compile_rules([("allow", "backoffice:users:*")])
        assert rules.permits("backoffice:users:create")
        assert not rules.permits("backoffice:groups:view")

    def test_deny_wins(self):
        rules = compile_rules([("allow", "*:*:*"), ("deny", "backoffice:users:delete")])
        assert rules.permits("backoffice:users:edit")
        assert not rules.permits("backoffice:users:delete")

    def test_nothing_allowed_by_default(self):
        assert not compile_rules([]).permits("backoffice:users:view")

    def test_malformed_stored_patterns_are_ignored(self):
        assert not compile_rules([("allow", "*:*")]).permits("backoffice:users:view")

    @pytest.mark.parametrize("bad", ["", "*:*", "a:b:c:d", "Back:users:view", "a b:c:d", "a:*x:c"])
    def test_bad_patterns_fail_validation(self, bad):
        with pytest.raises(ValidationError):
            validate_pattern(bad)

    @given(st.text(max_size=40))
    def test_validation_only_ever_raises_validation_error(self, text):
        try:
            validate_pattern(text)
        except ValidationError:
            return
        assert len(text.split(":")) == 3

    def test_a_resource_must_not_hold_wildcards(self):
        with pytest.raises(ValueError):
            compile_rules([("allow", "*:*:*")]).permits("backoffice:*:view")


@pytest.mark.django_db
class TestCachedCheck:
    def _user_with(self, *rules):
        role = RoleFactory()
        for effect, pattern in rules:
            RuleFactory(role=role, effect=effect, pattern=pattern)
        return UserFactory(groups=[GroupFactory(roles=[role])]), role

    def test_root_is_allowed_everything(self, root_user):
        assert can(root_user, "backoffice:users:delete")
        assert can(root_user, "anything:at:all")

    def test_warm_check_costs_no_query(self, django_assert_num_queries):
        user, _ = self._user_with(("allow", "backoffice:users:view"))
        assert can(user, "backoffice:users:view")  # warms the compiled rules
        fresh = User.objects.get(pk=user.pk)  # as on the next request
        with django_assert_num_queries(0):
            assert can(fresh, "backoffice:users:view")
            assert not can(fresh, "backoffice:audit:view")

    def test_rule_changes_apply_on_next_check(self, root_user):
        from accounts.services import role_update

        user, role = self._user_with(("allow", "backoffice:users:view"))
        assert not can(User.objects.get(pk=user.pk), "backoffice:audit:view")

        def rules(*lines):
            role_update(
                role=role, name=role.name, description="", rules=lines, by=Actor(user=root_user)
            )

        rules(("allow", "backoffice:users:view"), ("allow", "backoffice:audit:view"))
        assert can(User.objects.get(pk=user.pk), "backoffice:audit:view")
        rules(("allow", "backoffice:audit:view"), ("deny", "backoffice:*:*"))
        assert not can(User.objects.get(pk=user.pk), "backoffice:users:view")
        rules(("allow", "backoffice:audit:view"))
        assert can(User.objects.get(pk=user.pk), "backoffice:audit:view")

    def test_membership_and_group_role_changes_apply(self, root_user):
        from accounts.services import group_update, user_update

        user, role = self._user_with(("allow", "backoffice:users:view"))
        group = user.groups.get()
        assert can(User.objects.get(pk=user.pk), "backoffice:users:view")
        group_update(
            group=group, name=group.name, description="", roles=[], by=Actor(user=root_user)
        )
        assert not can(User.objects.get(pk=user.pk), "backoffice:users:view")
        group_update(
            group=group, name=group.name, description="", roles=[role], by=Actor(user=root_user)
        )
        assert can(User.objects.get(pk=user.pk), "backoffice:users:view")
        fresh = User.objects.get(pk=user.pk)
        user_update(
            user=fresh,
            email=fresh.email,
            first_name=fresh.first_name,
            last_name=fresh.last_name,
            groups=[],
            active=True,
            by=Actor(user=root_user),
        )
        assert not can(User.objects.get(pk=user.pk), "backoffice:users:view")

    def test_blocked_and_anonymous_users_are_allowed_nothing(self, root_user):
        from django.contrib.auth.models import AnonymousUser

        root_user.status = User.Status.BLOCKED
        assert not can(root_user, "backoffice:users:view")
        assert not can(AnonymousUser(), "backoffice:users:view")


@pytest.mark.django_db
class TestScreens:
    def test_dashboard_shows_name_email_and_allowed_navigation(self, client, root_user):
        login(client, root_user.email, PASSWORD)
        html = client.get("/").content.decode()
        assert "Grace Hopper" in html and "root@shop.example" in html
        assert '<a href="/users/">Users</a>' in html
        assert '<a href="/audit/">Audit log</a>' in html
        assert 'action="/logout/"' in html and "csrfmiddlewaretoken" in html

    def test_plain_user_sees_dashboard_only(self, client):
        plain = UserFactory(groups=["backoffice-users"])
        login(client, plain.email, PASSWORD)
        html = client.get("/").content.decode()
        assert 'href="/users/"' not in html and 'href="/audit/"' not in html
        forbidden = client.get("/users/")
        assert forbidden.status_code == 403
        assert "Not allowed" in forbidden.content.decode()

    def test_navigation_follows_rules(self, client):
        role = RoleFactory()
        RuleFactory(role=role, pattern="backoffice:users:view")
        viewer = UserFactory(groups=[GroupFactory(roles=[role])])
        login(client, viewer.email, PASSWORD)
        html = client.get("/").content.decode()
        assert '<a href="/users/">Users</a>' in html and 'href="/audit/"' not in html
        assert client.get("/users/").status_code == 200
        assert client.get("/audit/").status_code == 403

    def test_blocked_user_loses_open_session(self, client, root_user):
        login(client, root_user.email, PASSWORD)
        assert client.get("/").status_code == 200
        User.objects.filter(pk=root_user.pk).update(status=User.Status.BLOCKED)
        assert client.get("/").status_code == 302

    def test_unknown_page_is_a_404_page(self, client):
        response = client.get("/no/such/page/")
        assert response.status_code == 404
        assert "Page not found" in response.content.decode()

    @pytest.mark.parametrize("path", ["/signup/", "/email/", "/confirm-email/abc/"])
    def test_self_service_account_pages_do_not_exist(self, client, path):
        assert client.get(path).status_code == 404
        assert client.post(path, {"email": "x@y.z", "password1": "p" * 20}).status_code in (
            403,
            404,
        )
        assert not User.objects.exists()
