"""Escalation through the screens: attempts by an admin holding one narrow
right, by two admins racing, and by a careless first-time admin, through the
pages as a browser would send them.

Each test asserts the *secure* behaviour, so it fails today and passes once
the weakness it names is fixed. Races are reproduced deterministically by
`another_write_lands_first`: it runs another admin's committed change at the
moment a write is about to take the access lock, i.e. after the page has read
and validated its input (the same interleaving two real requests produce; the
PostgreSQL test at the end shows it with real threads).
"""

import contextlib
from unittest import mock

import pytest
from allauth.mfa.models import Authenticator
from django.core import mail
from django.db import connection
from django.test import Client

from accounts import services
from accounts.audit import Actor
from accounts.delegation import managers_remain
from accounts.models import AuditEvent, Group, Role, Rule, User
from tests.conftest import login
from tests.factories import PASSWORD, GroupFactory, RoleFactory, RuleFactory, UserFactory
from tests.support.mfa import activate_totp
from tests.support.people import admin_with, browser_of, user_form
from tests.support.sso import ADA, configure, sso_login


@contextlib.contextmanager
def another_write_lands_first(action, *, on_call: int = 1):
    """Run `action` (another admin's change, committed) just before the
    `on_call`-th access write of the request enters its transaction."""
    from accounts.services import groups, mfa, passwords, roles, users

    modules = (users, groups, roles, passwords, mfa)
    real = users.access_write
    calls = []

    @contextlib.contextmanager
    def write(**kwargs):
        calls.append(None)
        if len(calls) == on_call:
            action()
        with real(**kwargs) as writer:
            yield writer

    with contextlib.ExitStack() as stack:
        for module in modules:
            stack.enter_context(mock.patch.object(module, "access_write", write))
        yield


def no_traceback(client: Client) -> Client:
    client.raise_request_exception = False
    return client


# --- 1. MFA policy: a required member sheds MFA and keeps every right ----------------


@pytest.mark.django_db
class TestMfaPolicyEscape:
    """Claim 7: "MFA-required members cannot turn MFA off". The policy is on
    group *names* while rights are on roles, so a required member who may edit
    users and create groups makes a twin group with the same role, moves into
    it, and turns MFA off: same rights, password only from then on."""

    @pytest.mark.parametrize("required", ["ops", "root"])
    def test_required_member_cannot_shed_mfa_through_a_twin_group(self, settings, required):
        settings.IAM_MFA_REQUIRED_GROUPS = ["root", "ops"]
        UserFactory(email="other-root@shop.example", groups=["root"])
        if required == "root":
            attacker = UserFactory(email="attacker@shop.example", groups=["root"])
            role = Role.objects.get(name="administrator")
        else:
            role = RoleFactory(name="ops-role")
            for pattern in (
                "backoffice:users:view",
                "backoffice:users:edit",
                "backoffice:groups:view",
                "backoffice:groups:create",
            ):
                RuleFactory(role=role, pattern=pattern)
            ops = GroupFactory(name="ops", roles=[role])
            attacker = UserFactory(email="attacker@shop.example", groups=[ops])
        client = Client()
        login(client, attacker.email, PASSWORD)
        activate_totp(client)  # the policy forces it at login
        # POST /groups/add/ name=<twin>&roles=<own role>
        client.post("/groups/add/", {"name": f"{required}-twin", "roles": [role.pk]})
        twin = Group.objects.filter(name=f"{required}-twin").first()
        if twin is not None:
            # POST /users/<self>/ groups=<twin> (leaves the required group)
            client.post(f"/users/{attacker.pk}/", user_form(attacker, groups=[twin.pk]))
        # POST /2fa/totp/deactivate/
        client.post("/2fa/totp/deactivate/")
        assert Authenticator.objects.filter(user=attacker, type="totp").exists(), (
            f"member of {required} now in {list(attacker.groups.values_list('name', flat=True))} "
            "turned MFA off while keeping the same rights"
        )


# --- 2. Resource exhaustion through the role form -------------------------------------


@pytest.mark.django_db
class TestRoleFormExhaustion:
    """`accounts.resources.matching` is an unbounded functools.cache and the
    role form's rules field has no size limit: each distinct well-formed
    pattern that matches nothing is kept for the life of the worker. One
    2.5 MB POST (160,000 lines) costs ~15 s of CPU in parse_rules and leaves
    ~140,000 entries (~50 MB) in the worker; repeat until it is killed."""

    def test_patterns_typed_in_a_role_do_not_pile_up_in_a_process_cache(self):
        from accounts.resources import matching

        admin = admin_with("backoffice:roles:*", name="role-admins")
        client = browser_of(admin)
        info = getattr(matching, "cache_info", None)
        before = info().currsize if info else 0
        for batch in range(3):
            rules = "\n".join(f"allow zz{batch}x{i}:yy:xx" for i in range(1000))
            response = client.post("/roles/add/", {"name": f"r{batch}", "rules": rules})
            assert response.status_code == 200  # refused: matches nothing
        if info is None:
            return  # no cache at all: nothing can pile up
        grown = info().currsize - before
        assert grown == 0 or info().maxsize is not None, (
            f"{grown} attacker-chosen patterns stay cached for the worker's life"
        )


# --- 3. "You cannot take permissions away from yourself" (README rule 4) -------------


@pytest.mark.django_db
class TestSelfDemotion:
    """The user form refuses it (_keeps_own_permissions); the role and group
    forms do not. A careless admin tidying their own role locks themselves
    out of a screen, and only another admin can give it back."""

    def test_role_admin_cannot_drop_a_right_of_their_own_role(self):
        UserFactory(email="root@shop.example", groups=["root"])
        admin = admin_with("backoffice:roles:*", "backoffice:users:view", name="role-admins")
        role = admin.groups.get().roles.get()
        client = browser_of(admin)
        # POST /roles/<own role>/ rules="allow backoffice:roles:*"
        client.post(f"/roles/{role.pk}/", {"name": role.name, "rules": "allow backoffice:roles:*"})
        assert role.rules.filter(pattern="backoffice:users:view").exists()
        assert client.get("/users/").status_code == 200

    def test_group_admin_cannot_take_the_role_off_their_own_group(self):
        UserFactory(email="root@shop.example", groups=["root"])
        admin = admin_with("backoffice:groups:*", "backoffice:users:view", name="group-admins")
        group = admin.groups.get()
        client = browser_of(admin)
        # POST /groups/<own group>/ roles= (none)
        client.post(f"/groups/{group.pk}/", {"name": group.name})
        assert group.roles.exists()
        assert client.get("/users/").status_code == 200

    def test_role_admin_cannot_deny_themself_with_a_new_rule(self):
        UserFactory(email="root@shop.example", groups=["root"])
        admin = admin_with("backoffice:roles:*", "backoffice:audit:view", name="role-admins")
        role = admin.groups.get().roles.get()
        client = browser_of(admin)
        rules = "allow backoffice:roles:*\nallow backoffice:audit:view\ndeny backoffice:audit:view"
        client.post(f"/roles/{role.pk}/", {"name": role.name, "rules": rules})
        assert client.get("/audit/").status_code == 200


# --- 4. Rank is judged on effective permissions only (design gaps) -------------------


@pytest.mark.django_db
class TestRankOnLatentPermissions:
    """Claims 2 and 3 hold as worded, but README rule 2 says "You cannot act
    on someone above you"; two ways a lower admin still does."""

    def test_helpdesk_cannot_take_over_a_jailed_root_member(self):
        # A root member put in a deny-all group (as tests/test_delegation does
        # to "jail" one) has no effective permissions, so a users:edit admin
        # outranks them: they retarget the login email (then use the public
        # password reset) and own a root account the day the jail is lifted.
        UserFactory(email="root@shop.example", groups=["root"])
        jail_role = RoleFactory(name="jail")
        RuleFactory(role=jail_role, effect="deny", pattern="*:*:*")
        jail = GroupFactory(name="jail", roles=[jail_role])
        jailed = UserFactory(email="jailed@shop.example", groups=["root", jail])
        helpdesk = admin_with("backoffice:users:view", "backoffice:users:edit", name="helpdesk")
        client = browser_of(helpdesk)
        # POST /users/<jailed>/ email=mallory@evil.example
        client.post(f"/users/{jailed.pk}/", user_form(jailed, email="mallory@evil.example"))
        jailed.refresh_from_db()
        assert jailed.email == "jailed@shop.example"

    def test_lower_admin_cannot_strip_root_members_through_a_shared_group(self):
        # Root members are also in backoffice-users (the SSO default group,
        # empty scope). An admin with groups/roles rights and audit:* gives it
        # a role "deny backoffice:audit:*": every root member in it loses the
        # audit screens, though the admin may not edit any of them.
        root_member = UserFactory(email="r1@shop.example", groups=["root", "backoffice-users"])
        UserFactory(email="r2@shop.example", groups=["root"])
        admin = admin_with(
            "backoffice:groups:*", "backoffice:roles:*", "backoffice:audit:*", name="ga"
        )
        client = browser_of(admin)
        client.post("/roles/add/", {"name": "no-audit", "rules": "deny backoffice:audit:*"})
        everyone = Group.objects.get(name="backoffice-users")
        role = Role.objects.filter(name="no-audit").first()
        if role is not None:
            client.post(f"/groups/{everyone.pk}/", {"name": everyone.name, "roles": [role.pk]})
        assert browser_of(root_member).get("/audit/").status_code == 200


# --- 5. Operators: SSO ROLE_MAP and the root invariant --------------------------------


@pytest.mark.django_db
class TestSsoLastManager:
    def test_last_manager_mapped_into_a_restricted_group_gets_no_500(self, client, fake, settings):
        # ROLE_MAP puts IdP role "contractor" in group contractors (deny
        # users:delete). The only manager logs in with that role: the sync
        # would poison them, access_write raises AccessRefused, and the SSO
        # callback (which catches only SSOError) answers 500.
        contractors = GroupFactory(name="contractors", roles=[RoleFactory(name="no-delete")])
        RuleFactory(role=contractors.roles.get(), effect="deny", pattern="backoffice:users:delete")
        configure(settings, fake, role_map='{"contractor": ["contractors"]}')
        UserFactory(email=ADA["email"], groups=["root"])
        no_traceback(client)
        response = sso_login(client, fake, {**ADA, "roles": ["contractor"]})
        assert response.status_code == 302
        assert managers_remain()


# --- 6. Races and half-written results: 500s ------------------------------------------


@pytest.mark.django_db(transaction=True)
class TestRacesAreFormErrorsNot500:
    def test_same_group_name_created_twice_at_once(self, seed_groups):
        # group_create checks the name before it takes the lock.
        client = no_traceback(browser_of(UserFactory(groups=["root"])))
        with another_write_lands_first(lambda: Group.objects.create(name="ops")):
            response = client.post("/groups/add/", {"name": "ops"})
        assert response.status_code == 200
        assert "already exists" in response.content.decode()

    def test_case_variant_group_names_created_at_once(self, seed_groups):
        client = no_traceback(browser_of(UserFactory(groups=["root"])))
        with another_write_lands_first(lambda: Group.objects.create(name="Ops")):
            client.post("/groups/add/", {"name": "ops"})
        assert Group.objects.filter(name__iexact="ops").count() == 1

    def test_same_role_name_created_twice_at_once(self, seed_groups):
        client = no_traceback(browser_of(UserFactory(groups=["root"])))
        with another_write_lands_first(lambda: Role.objects.create(name="auditor")):
            response = client.post("/roles/add/", {"name": "auditor", "rules": ""})
        assert response.status_code == 200

    def test_group_deleted_while_being_given_to_a_user(self, seed_groups):
        client = no_traceback(browser_of(UserFactory(groups=["root"])))
        temp = GroupFactory(name="temp")
        target = UserFactory(email="target@shop.example")
        with another_write_lands_first(lambda: Group.objects.filter(pk=temp.pk).delete()):
            response = client.post(f"/users/{target.pk}/", user_form(target, groups=[temp.pk]))
        assert response.status_code == 200

    def test_group_deleted_while_given_to_a_new_user(self, seed_groups):
        client = no_traceback(browser_of(UserFactory(groups=["root"])))
        temp = GroupFactory(name="temp")
        form = {
            "first_name": "New",
            "last_name": "Hire",
            "email": "new@shop.example",
            "status": "active",
            "password_mode": "password",
            "password1": "a long enough passphrase 42",
            "password2": "a long enough passphrase 42",
            "groups": [temp.pk],
        }
        with another_write_lands_first(lambda: Group.objects.filter(pk=temp.pk).delete()):
            response = client.post("/users/add/", form)
        # Today: 200 with "A user with email new@shop.example already exists"
        # (the FK failure is caught as if it were a duplicate address): false.
        assert response.status_code == 200
        assert not User.objects.filter(email="new@shop.example").exists()
        assert "already exists" not in response.content.decode()

    def test_role_deleted_while_being_given_to_a_group(self, seed_groups):
        client = no_traceback(browser_of(UserFactory(groups=["root"])))
        temp = RoleFactory(name="temp")
        group = GroupFactory(name="team")
        with another_write_lands_first(lambda: Role.objects.filter(pk=temp.pk).delete()):
            response = client.post(f"/groups/{group.pk}/", {"name": "team", "roles": [temp.pk]})
        assert response.status_code == 200

    @pytest.mark.parametrize("kind", ["group", "role"])
    def test_group_or_role_deleted_while_being_edited(self, seed_groups, kind):
        # The service refuses ("no longer exists"); save_form then calls
        # subject.refresh_from_db() on the deleted row: DoesNotExist, 500.
        client = no_traceback(browser_of(UserFactory(groups=["root"])))
        subject = GroupFactory(name="team") if kind == "group" else RoleFactory(name="team")
        model = type(subject)
        with another_write_lands_first(lambda: model.objects.filter(pk=subject.pk).delete()):
            response = client.post(f"/{kind}s/{subject.pk}/", {"name": "renamed"})
        assert response.status_code in (200, 302, 404)

    def test_admin_deleted_while_their_request_runs(self, seed_groups):
        # The refusal is audited with the deleted actor: FK error, 500.
        UserFactory(email="root@shop.example", groups=["root"])
        admin = admin_with("backoffice:users:*", name="helpdesk")
        target = UserFactory(email="target@shop.example")
        client = no_traceback(browser_of(admin))
        with another_write_lands_first(lambda: User.objects.filter(pk=admin.pk).delete()):
            response = client.post(f"/users/{target.pk}/block/")
        assert response.status_code != 500
        target.refresh_from_db()
        assert target.is_active

    def test_invitation_refused_after_the_account_was_created(self, seed_groups):
        # Create and invite are two access writes; losing users:create in
        # between leaves an account without its invitation and a 500 page.
        UserFactory(email="root@shop.example", groups=["root"])
        hr = admin_with("backoffice:users:view", "backoffice:users:create", name="hr")
        client = no_traceback(browser_of(hr))
        form = {
            "first_name": "New",
            "last_name": "Hire",
            "email": "new@shop.example",
            "status": "active",
            "password_mode": "invite",
        }
        revoke = lambda: Rule.objects.filter(pattern="backoffice:users:create").delete()  # noqa: E731
        with another_write_lands_first(revoke, on_call=2):
            response = client.post("/users/add/", form)
        assert response.status_code != 500
        created = User.objects.filter(email="new@shop.example").exists()
        assert not created or len(mail.outbox) == 1

    def test_user_deleted_by_two_admins_is_recorded_once(self, seed_groups):
        UserFactory(email="root@shop.example", groups=["root"])
        admin = admin_with("backoffice:users:*", name="helpdesk")
        target = UserFactory(email="target@shop.example")
        other = admin_with("backoffice:users:*", name="helpdesk2")

        def other_admin_deletes():
            services.user_delete(user=User.objects.get(pk=target.pk), by=Actor(user=other))

        client = no_traceback(browser_of(admin))
        with another_write_lands_first(other_admin_deletes):
            client.post(f"/users/{target.pk}/delete/")
        deleted = AuditEvent.objects.filter(action="user.deleted", target_id=str(target.pk))
        assert list(deleted.values_list("actor_id", flat=True)) == [other.pk]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="real races need PostgreSQL")
def test_two_admins_creating_one_group_name_at_once(seed_groups):
    """The same race with real threads: in every round either both case
    variants are created, or one of the two same-name requests is a 500."""
    from tests.support.races import race

    a = no_traceback(browser_of(UserFactory(email="a@shop.example", groups=["root"])))
    b = no_traceback(browser_of(UserFactory(email="b@shop.example", groups=["root"])))
    for round_ in range(5):
        statuses = race(
            lambda: a.post("/groups/add/", {"name": f"team{round_}"}),  # noqa: B023
            lambda: b.post("/groups/add/", {"name": f"Team{round_}"}),  # noqa: B023
        )
        assert Group.objects.filter(name__iexact=f"team{round_}").count() == 1, statuses
        statuses = race(
            lambda: a.post("/groups/add/", {"name": f"crew{round_}"}),  # noqa: B023
            lambda: b.post("/groups/add/", {"name": f"crew{round_}"}),  # noqa: B023
        )
        assert 500 not in statuses, statuses
