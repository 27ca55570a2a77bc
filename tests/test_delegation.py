"""Delegation: an admin can give only what they hold, and root can never be
locked out. Each escalation an attacker with one narrow right would try goes
through the pages as a browser would send it (crafted POSTs included), is
refused with a message naming what is beyond the actor, changes nothing and
leaves an audit row; the same action by root works."""

import pytest

from accounts.audit import Actor
from accounts.models import AuditEvent, Group, Membership, Role, User
from tests.conftest import login
from tests.factories import PASSWORD, GroupFactory, RoleFactory, RuleFactory, UserFactory
from tests.support.people import admin_with, browser_of, user_form

pytestmark = pytest.mark.django_db


def refusals(**filters):
    return AuditEvent.objects.filter(
        action="access.grant_refused", outcome=AuditEvent.Outcome.FAILURE, **filters
    )


def root_group() -> Group:
    return Group.objects.get(name="root")


@pytest.fixture
def root_admin(db):
    return UserFactory(email="root@shop.example", groups=["root"])


class TestGrantBound:
    def test_user_editor_cannot_put_themself_in_root(self):
        editor = admin_with("backoffice:users:view", "backoffice:users:edit", name="editors")
        client = browser_of(editor)
        groups = [g.pk for g in editor.groups.all()] + [root_group().pk]
        response = client.post(f"/users/{editor.pk}/", user_form(editor, groups=groups))
        html = response.content.decode()
        assert response.status_code == 200
        assert "You cannot give group root" in html
        assert "backoffice:roles:*" in html  # names what is beyond them
        assert not editor.groups.filter(name="root").exists()
        event = refusals(target_label=editor.email).get()
        assert event.actor == editor and event.details["reason"] == "grant_bound"
        assert "backoffice:groups:delete" in event.details["resources"]
        assert client.get("/roles/").status_code == 403
        assert client.get("/groups/").status_code == 403

    def test_user_editor_sees_root_disabled_with_a_reason(self):
        editor = admin_with("backoffice:users:view", "backoffice:users:edit", name="editors")
        html = browser_of(editor).get(f"/users/{editor.pk}/").content.decode()
        root_pk = root_group().pk
        box = html.split(f'value="{root_pk}"', 1)[1].split(">", 1)[0]
        assert "disabled" in box
        assert "which you do not hold" in html
        users_group = Group.objects.get(name="backoffice-users")
        free = html.split(f'value="{users_group.pk}"', 1)[1].split(">", 1)[0]
        assert "disabled" not in free

    def test_group_admin_cannot_give_their_group_the_administrator_role(self):
        admin = admin_with("backoffice:groups:*", name="group-admins")
        group = admin.groups.get()
        own_role = group.roles.get()
        administrator = Role.objects.get(name="administrator")
        response = browser_of(admin).post(
            f"/groups/{group.pk}/",
            {"name": group.name, "roles": [own_role.pk, administrator.pk]},
        )
        assert "You cannot give or take away role administrator" in response.content.decode()
        assert list(group.roles.all()) == [own_role]
        assert refusals(target_label=group.name).exists()

    def test_role_admin_cannot_rewrite_their_role_to_allow_everything(self):
        admin = admin_with("backoffice:roles:*", name="role-admins")
        role = admin.groups.get().roles.get()
        response = browser_of(admin).post(
            f"/roles/{role.pk}/", {"name": role.name, "rules": "allow *:*:*"}
        )
        html = response.content.decode()
        assert "You cannot write these rules in role" in html and "backoffice:users:" in html
        assert [r.pattern for r in role.rules.all()] == ["backoffice:roles:*"]
        assert refusals(target_label=role.name).exists()

    def test_user_creator_cannot_create_an_account_in_root(self):
        creator = admin_with("backoffice:users:view", "backoffice:users:create", name="hr")
        response = browser_of(creator).post(
            "/users/add/",
            {
                "first_name": "Mallory",
                "last_name": "Mole",
                "email": "mallory@shop.example",
                "status": "active",
                "password_mode": "password",
                "password1": "a long enough passphrase 42",
                "password2": "a long enough passphrase 42",
                "groups": [root_group().pk],
            },
        )
        assert "You cannot give group root" in response.content.decode()
        assert not User.objects.filter(email="mallory@shop.example").exists()
        assert refusals(target_label="mallory@shop.example").exists()

    def test_cannot_take_away_what_one_could_not_give(self):
        # users:edit + groups:view: the member of `auditors` (audit:*) is
        # below the editor only if the editor holds audit too; here the
        # editor holds it, but `auditors` also reaches roles:view.
        editor = admin_with(
            "backoffice:users:*", "backoffice:audit:*", "backoffice:groups:view", name="editors"
        )
        auditors = GroupFactory(name="auditors", roles=[RoleFactory()])
        RuleFactory(role=auditors.roles.get(), pattern="backoffice:roles:view")
        member = UserFactory(email="member@shop.example", groups=[auditors])
        RuleFactory(role=editor.groups.get().roles.get(), pattern="backoffice:roles:view")
        client = browser_of(editor)
        # Rank holds now (roles:view is the editor's too); the group may go.
        response = client.post(f"/users/{member.pk}/", user_form(member, groups=[]))
        assert response.status_code == 302
        # A group whose rules the editor does not hold cannot be taken away.
        keepers = GroupFactory(name="keepers", roles=[RoleFactory()])
        RuleFactory(role=keepers.roles.get(), effect="deny", pattern="backoffice:groups:*")
        Membership.objects.create(user=member, group=keepers)
        response = client.post(f"/users/{member.pk}/", user_form(member, groups=[]))
        assert "You cannot take away group keepers" in response.content.decode()
        assert member.groups.filter(name="keepers").exists()

    def test_unknown_resources_are_refused_with_the_list(self, client, root_admin):
        login(client, root_admin.email, PASSWORD)
        response = client.post(
            "/roles/add/", {"name": "typo", "rules": "allow backoffice:usres:view"}
        )
        html = response.content.decode()
        assert "matches no resource that exists" in html and "backoffice:users:view" in html
        assert not Role.objects.filter(name="typo").exists()

    def test_root_can_do_all_of_it(self, client, root_admin):
        target = UserFactory(email="target@shop.example")
        login(client, root_admin.email, PASSWORD)
        response = client.post(f"/users/{target.pk}/", user_form(target, groups=[root_group().pk]))
        assert response.status_code == 302 and target.groups.filter(name="root").exists()
        role = RoleFactory(name="wide")
        response = client.post(f"/roles/{role.pk}/", {"name": "wide", "rules": "allow *:*:*"})
        assert response.status_code == 302
        group = GroupFactory(name="wide-group")
        response = client.post(f"/groups/{group.pk}/", {"name": "wide-group", "roles": [role.pk]})
        assert response.status_code == 302
        assert not refusals().exists()


class TestRankAndFieldRights:
    def test_editor_denied_block_cannot_block_through_the_edit_form(self):
        editor = admin_with("backoffice:users:*", deny=["backoffice:users:block"], name="editors")
        target = UserFactory(email="target@shop.example")
        client = browser_of(editor)
        page = client.get(f"/users/{target.pk}/").content.decode()
        assert "needs backoffice:users:block" in page
        response = client.post(f"/users/{target.pk}/", user_form(target, status="blocked"))
        assert "You may not block or unblock accounts" in response.content.decode()
        target.refresh_from_db()
        assert target.is_active
        assert refusals(target_label=target.email).get().details["reason"] == "right"
        assert client.post(f"/users/{target.pk}/block/").status_code == 403
        # Leaving the status alone still saves the rest.
        response = client.post(f"/users/{target.pk}/", user_form(target, first_name="Tara"))
        assert response.status_code == 302
        target.refresh_from_db()
        assert target.first_name == "Tara" and target.is_active

    @pytest.mark.parametrize(
        "path",
        ["block/", "delete/", "password-reset/", "mfa-reset/"],
    )
    def test_narrow_admin_cannot_act_on_a_root_member(self, path, root_admin):
        admin = admin_with("backoffice:users:*", name="helpdesk")
        client = browser_of(admin)
        response = client.post(f"/users/{root_admin.pk}/{path}", follow=True)
        assert "root@shop.example holds permissions you do not" in response.content.decode()
        root_admin.refresh_from_db()
        assert root_admin.is_active
        assert refusals(target_label=root_admin.email).get().details["reason"] == "rank"

    def test_edit_page_of_a_higher_user_is_read_only(self, root_admin):
        admin = admin_with("backoffice:users:*", name="helpdesk")
        html = browser_of(admin).get(f"/users/{root_admin.pk}/").content.decode()
        assert 'data-testid="rank-notice"' in html
        assert ">Save</button>" not in html and "Block</button>" not in html

    def test_the_same_admin_may_act_on_someone_below(self):
        admin = admin_with("backoffice:users:*", name="helpdesk")
        viewer = admin_with("backoffice:users:view", name="viewers", email="v@shop.example")
        client = browser_of(admin)
        assert client.post(f"/users/{viewer.pk}/block/").status_code == 302
        viewer.refresh_from_db()
        assert not viewer.is_active


class TestRootInvariant:
    def test_root_cannot_jail_every_root_member(self, client, root_admin):
        second = UserFactory(email="second@shop.example", groups=["root"])
        jail_role = RoleFactory(name="jail")
        RuleFactory(role=jail_role, effect="deny", pattern="*:*:*")
        jail = GroupFactory(name="jail", roles=[jail_role])
        login(client, root_admin.email, PASSWORD)
        groups = [root_group().pk, jail.pk]
        # Jailing oneself: never (even while another root member manages).
        response = client.post(f"/users/{root_admin.pk}/", user_form(root_admin, groups=groups))
        assert "You cannot take permissions away from yourself" in response.content.decode()
        # One other root member jailed: root_admin still manages access.
        response = client.post(f"/users/{second.pk}/", user_form(second, groups=groups))
        assert response.status_code == 302
        # Jailing root itself would leave nobody.
        administrator = Role.objects.get(name="administrator")
        response = client.post(
            f"/groups/{root_group().pk}/",
            {"name": "root", "roles": [administrator.pk, jail_role.pk]},
        )
        assert "would leave no active user able to manage" in response.content.decode()
        assert not root_group().roles.filter(name="jail").exists()
        lockouts = AuditEvent.objects.filter(action="access.lockout_refused")
        assert lockouts.get().actor == root_admin
        assert client.get("/users/").status_code == 200

    def test_a_deny_reaching_the_managers_through_another_group_counts(self, client, root_admin):
        # The only manager is root_admin; a role in their *other* group that
        # denies roles:edit breaks management as surely as emptying root.
        other = GroupFactory(name="team", roles=[RoleFactory(name="team-role")])
        RuleFactory(role=other.roles.get(), pattern="backoffice:audit:view")
        Membership.objects.create(user=root_admin, group=other)
        login(client, root_admin.email, PASSWORD)
        response = client.post(
            f"/roles/{other.roles.get().pk}/",
            {
                "name": "team-role",
                "rules": "allow backoffice:audit:view\ndeny backoffice:roles:edit",
            },
        )
        assert "would leave no active user able to manage" in response.content.decode()

    def test_blocking_the_last_manager_is_refused_even_for_an_operator(self, root_admin):
        from accounts.services import AccountError, user_set_status

        with pytest.raises(AccountError, match="would leave no active user"):
            user_set_status(user=root_admin, active=False, by=Actor.system())
        root_admin.refresh_from_db()
        assert root_admin.is_active


class TestLiveSessionsFollow:
    def test_a_user_added_to_root_is_sent_to_mfa_setup_at_once(self, settings, root_admin):
        from tests.support.mfa import activate_totp

        settings.IAM_MFA_REQUIRED_GROUPS = ["root"]
        member = UserFactory(email="member@shop.example")
        member_browser = browser_of(member)
        assert member_browser.get("/").status_code == 200
        admin_browser = browser_of(root_admin)
        activate_totp(admin_browser)  # root itself complies
        response = admin_browser.post(
            f"/users/{member.pk}/", user_form(member, groups=[root_group().pk])
        )
        assert response.status_code == 302
        response = member_browser.get("/")
        assert response.status_code == 302 and response["Location"] == "/2fa/totp/activate/"
        assert member_browser.get("/users/").status_code == 302  # nothing else opens

    def test_a_right_taken_away_is_gone_on_the_next_request(self, client, root_admin):
        member = admin_with("backoffice:users:view", name="viewers", email="v@shop.example")
        member_browser = browser_of(member)
        assert member_browser.get("/users/").status_code == 200
        login(client, root_admin.email, PASSWORD)
        client.post(f"/users/{member.pk}/", user_form(member, groups=[]))
        assert member_browser.get("/users/").status_code == 403


class TestOperators:
    def test_createuser_may_put_anyone_in_root(self):
        import io

        from django.core.management import call_command

        call_command(
            "createuser",
            "--email=ops@shop.example",
            "--first-name=Op",
            "--last-name=Erator",
            "--group=root",
            "--no-password",
            stdout=io.StringIO(),
        )
        assert User.objects.get(email="ops@shop.example").groups.filter(name="root").exists()


class TestCost:
    def test_a_bounded_write_costs_the_same_queries_with_500_more_users(self):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from accounts.services import user_update

        admin = admin_with("backoffice:users:*", "backoffice:audit:*", name="helpdesk")
        auditors = GroupFactory(name="auditors", roles=[RoleFactory()])
        RuleFactory(role=auditors.roles.get(), pattern="backoffice:audit:view")
        # Named as the edits name it: each measured edit changes groups only
        # (an edit that changes nothing else writes no row).
        target = UserFactory(email="target@shop.example", first_name="T", last_name="U")
        UserFactory(groups=["root"])

        def give_and_take(groups) -> int:
            with CaptureQueriesContext(connection) as queries:
                user_update(
                    user=User.objects.get(pk=target.pk),
                    email=target.email,
                    first_name="T",
                    last_name="U",
                    groups=groups,
                    active=True,
                    by=Actor(user=admin),
                )
            return len(queries)

        few = give_and_take([auditors]) + give_and_take([])
        root, helpdesk = root_group(), admin.groups.get()
        crowd = User.objects.bulk_create(
            User(email=f"crowd{i}@shop.example", first_name="C", last_name="D") for i in range(500)
        )
        Membership.objects.bulk_create(
            Membership(user=u, group=root if i % 2 else helpdesk) for i, u in enumerate(crowd)
        )
        many = give_and_take([auditors]) + give_and_take([])
        assert many == few
