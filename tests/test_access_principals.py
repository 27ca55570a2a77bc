"""Every principal is "account ∩ cap", and every event names it and its door.

A person, a service account acting through an API client, a SCIM client and
an identity provider all act through one `Actor`: the access write reads its
account and its cap fresh, and the audit trail records who and through which
channel. Refusals carry a code that machines map without reading the text.
"""

from __future__ import annotations

import csv
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client, RequestFactory

from accounts import services
from accounts.audit import Actor
from accounts.delegation import ALL, access_write, user_permissions
from accounts.errors import CODE_STATUS, CODES, AccountError
from accounts.models import AuditEvent, Group, User
from tests.conftest import login
from tests.factories import PASSWORD, GroupFactory, RoleFactory, RuleFactory, UserFactory

pytestmark = pytest.mark.django_db

SCIM = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


@pytest.fixture
def root(db):
    return UserFactory(email="root@shop.example", groups=["root"])


@pytest.fixture
def user_admins(db):
    role = RoleFactory(name="user-admin")
    RuleFactory(role=role, pattern="backoffice:users:*")
    RuleFactory(role=role, pattern="backoffice:dashboard:*")
    return GroupFactory(name="user-admins", roles=[role])


# --- channels -----------------------------------------------------------------------


def test_each_door_records_its_channel_and_the_audit_screen_shows_it(root):
    # The screens: an admin blocks an account.
    person = UserFactory(email="ada@shop.example")
    admin = Client()
    login(admin, root.email, PASSWORD)
    assert admin.post(f"/users/{person.pk}/block/").status_code == 302
    blocked = AuditEvent.objects.get(action="user.blocked")
    assert (blocked.actor_label, blocked.channel) == (root.email, "web")
    # The command line.
    call_command(
        "createuser",
        "--email=cli@shop.example",
        "--first-name=C",
        "--last-name=Li",
        "--no-password",
        stdout=StringIO(),
    )
    created = AuditEvent.objects.get(action="user.created", target_label="cli@shop.example")
    assert created.channel == "cli"
    # SCIM.
    out = StringIO()
    call_command("scimtoken", "create", "--name", "entra", stdout=out)
    token = out.getvalue().strip().splitlines()[-1]
    body = {
        "schemas": [USER_SCHEMA],
        "userName": "jo@shop.example",
        "active": True,
        "name": {"givenName": "Jo", "familyName": "Bloggs"},
        "emails": [{"primary": True, "value": "jo@shop.example"}],
    }
    response = Client().post(
        "/scim/v2/Users",
        data=json.dumps(body),
        content_type=SCIM,
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 201, response.content
    created = AuditEvent.objects.get(action="user.created", target_label="jo@shop.example")
    assert (created.actor_label, created.channel) == ("scim:entra", "scim")
    # The audit screen and its export show it.
    page = admin.get("/audit/?action=user.created").content.decode()
    assert '<span class="muted">scim</span>' in page
    assert '<span class="muted">cli</span>' in page
    export = b"".join(admin.get("/audit/export.csv?action=user.created").streaming_content)
    rows = list(csv.DictReader(StringIO(export.decode())))
    assert {row["channel"] for row in rows} >= {"scim", "cli"}


@pytest.mark.parametrize(
    ("path", "channel"),
    [
        ("/users/1/", "web"),
        ("/api/v1/users/1/", "api"),
        ("/oauth/token/", "api"),
        ("/scim/v2/Users/1", "scim"),
        ("/sso/okta/callback/", "sso"),
    ],
)
def test_a_request_names_its_channel(path, channel):
    assert Actor.of(RequestFactory().post(path)).channel == channel
    assert Actor.system(request=RequestFactory().post(path)).channel == channel


def test_a_client_acting_for_an_account_is_named_with_it(root):
    by = Actor(user=root, label="client reports", channel="api")
    assert str(by) == "root@shop.example via client reports"
    assert str(by.gone()) == "root@shop.example via client reports"
    assert str(Actor.system()) == "operator" and Actor.system().channel == "cli"


# --- account ∩ cap ------------------------------------------------------------------


def test_a_capped_actor_holds_its_account_within_its_cap(root):
    by = Actor(user=root).capped({"backoffice:users:view", "backoffice:users:create"})
    with access_write(by=by) as writer:
        assert writer.permissions == {"backoffice:users:view", "backoffice:users:create"}
    # Caps only narrow.
    narrower = by.capped({"backoffice:users:view", "backoffice:groups:view"})
    assert narrower.cap == {"backoffice:users:view"}
    with pytest.raises(services.AccessRefused) as refused:
        services.user_create(email="x@shop.example", first_name="X", last_name="Y", by=narrower)
    assert refused.value.code == "right"
    assert not User.objects.filter(email="x@shop.example").exists()
    # A cap never gives: an account without rights stays without them.
    nobody = UserFactory(email="nobody@shop.example")
    with access_write(by=Actor(user=nobody).capped(ALL)) as writer:
        assert writer.permissions == frozenset()


def test_a_capped_operator_is_bound_like_an_admin_holding_the_cap(root, user_admins):
    """The operator's trust within a cap (an identity provider, a SCIM
    client): rank and the grant bound hold against the cap."""
    held = user_permissions(UserFactory(email="ua@shop.example", groups=[user_admins]).pk)
    by = Actor.system(label="idp").capped(held)
    with pytest.raises(services.AccessRefused) as refused:
        services.user_set_status(user=root, active=False, by=by)
    assert refused.value.code == "rank"
    root.refresh_from_db()
    assert root.is_active


def test_a_scim_ceiling_is_a_cap_read_at_each_write(root, user_admins):
    by = Actor.bounded(label="scim:entra", ceiling=["user-admins"])
    with access_write(by=by) as writer:
        assert writer.permissions == user_permissions(
            UserFactory(email="m@shop.example", groups=[user_admins]).pk
        )
    # The ceiling group loses a rule: the next write holds less.
    user_admins.roles.get().rules.filter(pattern="backoffice:dashboard:*").delete()
    with access_write(by=by) as writer:
        assert "backoffice:dashboard:view" not in writer.permissions
    with access_write(by=Actor.bounded(label="scim:x", ceiling=["no-such-group"])) as writer:
        assert writer.permissions == frozenset()
    # No account and no bound: nothing.
    with access_write(by=Actor(label="nobody")) as writer:
        assert writer.permissions == frozenset()


# --- codes --------------------------------------------------------------------------


def test_every_code_has_a_status_and_a_plain_error_defaults_to_invalid():
    assert set(CODES) == set(CODE_STATUS)
    assert AccountError("anything").code == "invalid"
    assert AccountError("taken", code="email_taken").code == "email_taken"


def test_refusals_carry_their_code(root, user_admins):
    by = Actor(user=root)
    ada = UserFactory(email="ada@shop.example")

    def code_of(call, **kwargs) -> str:
        with pytest.raises(AccountError) as raised:
            call(**kwargs)
        assert raised.value.code in CODES
        return raised.value.code

    assert (
        code_of(
            services.user_create, email="ADA@shop.example", first_name="A", last_name="L", by=by
        )
        == "email_taken"
    )
    assert (
        code_of(services.user_create, email="not an address", first_name="A", last_name="L", by=by)
        == "invalid"
    )
    assert code_of(services.user_set_status, user=root, active=False, by=by) == "self"
    assert code_of(services.group_create, name="USER-admins", by=by) == "name_taken"
    built_in = Group.objects.get(name="root")
    assert code_of(services.group_delete, group=built_in, by=by) == "configured"
    UserFactory(email="member@shop.example", groups=[user_admins])
    empty_role = RoleFactory(name="empty")
    lonely = GroupFactory(name="lonely", roles=[empty_role])
    UserFactory(email="lonely@shop.example", groups=[lonely])
    assert code_of(services.group_delete, group=lonely, by=by) == "conflict"
    assert code_of(services.role_delete, role=empty_role, by=by) == "conflict"
    assert code_of(services.user_mfa_reset, user=ada, by=by) == "conflict"
    gone = UserFactory(email="gone@shop.example")
    User.objects.filter(pk=gone.pk).delete()
    assert code_of(services.user_set_status, user=gone, active=False, by=by) == "not_found"
    admin = UserFactory(email="admin@shop.example", groups=[user_admins])
    assert (
        code_of(services.user_set_status, user=root, active=False, by=Actor(user=admin)) == "rank"
    )
    assert code_of(services.group_create, name="new", by=Actor(user=admin)) == "right"
    viewers = GroupFactory(
        name="viewers", roles=[RuleFactory(pattern="backoffice:groups:view").role]
    )
    assert (
        code_of(
            services.user_update,
            user=ada,
            email=ada.email,
            first_name=ada.first_name,
            last_name=ada.last_name,
            groups=[viewers],
            active=True,
            by=Actor(user=admin),
        )
        == "grant_bound"
    )
    # Blocking the only manager would leave nobody to repair access.
    assert code_of(services.user_set_status, user=root, active=False, by=Actor.system()) == (
        "last_manager"
    )
