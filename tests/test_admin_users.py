"""The users screens, through HTTP as an admin's browser would use them."""

import logging
import re

import pytest
from django.core import mail
from django.test import Client

from accounts.models import AuditEvent, Group, User
from tests.conftest import login
from tests.factories import PASSWORD, GroupFactory, RoleFactory, RuleFactory, UserFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "another strong passphrase 9"


def table(response) -> str:
    """The list's table body: what the screen lists, not the page header."""
    html = response.content.decode()
    return html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]


def _form(**overrides):
    data = {
        "first_name": "Alan",
        "last_name": "Turing",
        "email": "alan@shop.example",
        "status": "active",
        "password_mode": "invite",
        "groups": [],
    }
    data.update(overrides)
    return data


class TestList:
    def test_search_filter_sort(self, admin):
        editors = GroupFactory(name="editors")
        UserFactory(email="zoe@shop.example", first_name="Zoe", last_name="Adams", groups=[editors])
        UserFactory(
            email="bob@shop.example",
            first_name="Bob",
            last_name="Young",
            status=User.Status.BLOCKED,
        )
        html = table(admin.get("/users/?q=zoe"))
        assert "zoe@shop.example" in html and "bob@shop.example" not in html
        html = table(admin.get("/users/?status=blocked"))
        assert "bob@shop.example" in html and "zoe@shop.example" not in html
        html = table(admin.get(f"/users/?group={editors.pk}"))
        assert "zoe@shop.example" in html and "root@shop.example" not in html
        html = table(admin.get("/users/?sort=-email"))
        assert html.index("zoe@shop.example") < html.index("bob@shop.example")
        html = table(admin.get("/users/?sort=name"))
        assert html.index("zoe@shop.example") < html.index("bob@shop.example")  # Adams < Young

    @pytest.mark.parametrize(
        "query",
        [
            "?status=nope",
            "?group=999999",
            "?group=abc",
            "?sort=password",
            "?page=-1",
            "?page=zzz",
            "?q=" + "x" * 500,
        ],
    )
    def test_bad_filters_never_500(self, admin, query):
        assert admin.get("/users/" + query).status_code == 200

    def test_pagination(self, admin):
        UserFactory.create_batch(60)
        first = admin.get("/users/").content.decode()
        assert "Page 1 of 2" in first and "61 results" in first
        assert "Page 2 of 2" in admin.get("/users/?page=2").content.decode()

    def test_fixed_query_count_whatever_the_page_size(self, admin, django_assert_max_num_queries):
        groups = GroupFactory.create_batch(3)
        UserFactory.create_batch(40, groups=groups)
        admin.get("/users/")  # warm: session, compiled rules
        with django_assert_max_num_queries(6) as small:
            admin.get("/users/?q=shop")
        UserFactory.create_batch(40, groups=groups)
        admin.get("/users/")  # memberships changed: rules recompile once
        with django_assert_max_num_queries(6) as large:
            admin.get("/users/?q=shop")
        assert len(small.captured_queries) == len(large.captured_queries)


class TestCreate:
    def test_with_invitation_email(self, admin):
        response = admin.post("/users/add/", _form(groups=[Group.objects.get(name="root").pk]))
        user = User.objects.get(email="alan@shop.example")
        assert response.status_code == 302 and response["Location"] == f"/users/{user.pk}/"
        assert not user.has_usable_password()
        assert [g.name for g in user.groups.all()] == ["root"]
        assert mail.outbox[0].to == ["alan@shop.example"]
        assert "72 hours" in mail.outbox[0].body
        link = re.search(r"http://testserver(/password/reset/key/\S+/)", mail.outbox[0].body)[1]
        newcomer = Client()
        form_url = newcomer.get(link)["Location"]
        done = newcomer.post(form_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
        assert done.status_code == 302
        assert login(Client(), "alan@shop.example", NEW_PASSWORD).status_code == 302
        created = AuditEvent.objects.get(action="user.created")
        assert created.actor.email == "root@shop.example" and created.details["groups"] == ["root"]
        assert AuditEvent.objects.filter(action="user.invited").exists()

    def test_with_initial_password(self, admin):
        response = admin.post(
            "/users/add/",
            _form(password_mode="password", password1=NEW_PASSWORD, password2=NEW_PASSWORD),
        )
        assert response.status_code == 302
        assert mail.outbox == []
        assert login(Client(), "alan@shop.example", NEW_PASSWORD).status_code == 302
        assert NEW_PASSWORD not in str(AuditEvent.objects.get(action="user.created").details)

    @pytest.mark.parametrize(
        "overrides,field_error",
        [
            ({"email": "root@SHOP.example"}, "A user with this email already exists."),
            ({"email": "not an email"}, "Enter a valid email address."),
            ({"first_name": ""}, "This field is required."),
            ({"status": "deleted"}, "Select a valid choice."),
            ({"groups": ["999999"]}, "Select a valid choice."),
            (
                {"password_mode": "password", "password1": "short", "password2": "short"},
                "This password is too short.",
            ),
            (
                {"password_mode": "password", "password1": NEW_PASSWORD, "password2": "other"},
                "The two passwords do not match.",
            ),
            (
                {
                    "password_mode": "password",
                    "password1": "alan@shop.example1",
                    "password2": "alan@shop.example1",
                },
                "The password is too similar to the email.",
            ),
        ],
    )
    def test_bad_input_is_a_field_error_and_creates_nothing(self, admin, overrides, field_error):
        count = User.objects.count()
        response = admin.post("/users/add/", _form(**overrides))
        assert response.status_code == 200
        assert field_error in response.content.decode()
        assert User.objects.count() == count
        assert mail.outbox == []


class TestEdit:
    def test_edit_names_email_groups_status_is_audited(self, admin):
        ada = UserFactory(email="ada@shop.example", first_name="Ada", last_name="L")
        editors = GroupFactory(name="editors")
        response = admin.post(
            f"/users/{ada.pk}/",
            _form(
                first_name="Ada",
                last_name="Lovelace",
                email="ada.l@shop.example",
                groups=[editors.pk],
            ),
        )
        assert response.status_code == 302
        ada.refresh_from_db()
        # The address waits for the link mailed to it (tests/test_users_email_change.py).
        assert (ada.last_name, ada.email) == ("Lovelace", "ada@shop.example")
        event = AuditEvent.objects.get(action="user.updated")
        assert event.details == {"last_name": ["L", "Lovelace"], "groups": [[], ["editors"]]}
        requested = AuditEvent.objects.get(action="user.email_change_requested")
        assert requested.details == {"email": ["ada@shop.example", "ada.l@shop.example"]}
        (confirm,) = [m for m in mail.outbox if m.to == ["ada.l@shop.example"]]
        opened = Client()
        opened.get(re.search(r"http://testserver(/email/confirm/\S+/)", confirm.body)[1])
        assert opened.post("/email/confirm/").status_code == 200
        assert login(Client(), "ada@shop.example", PASSWORD).status_code == 200
        assert login(Client(), "ada.l@shop.example", PASSWORD).status_code == 302

    def test_duplicate_email_is_a_field_error(self, admin):
        ada = UserFactory(email="ada@shop.example")
        response = admin.post(f"/users/{ada.pk}/", _form(email="ROOT@shop.example"))
        assert response.status_code == 200
        assert "A user with this email already exists." in response.content.decode()
        ada.refresh_from_db()
        assert ada.email == "ada@shop.example"

    @pytest.mark.parametrize(
        "path",
        [
            "/users/999999/",
            "/users/999999/delete/",
            "/users/999999999999999999/",
            "/users/9223372036854775808/",
            "/users/-1/",
            "/users/1e3/",
        ],
    )
    def test_unknown_id_is_404(self, admin, path):
        assert admin.get(path).status_code == 404

    @pytest.mark.parametrize("path", ["block", "unblock", "password-reset"])
    def test_unknown_id_on_actions_is_404(self, admin, path):
        assert admin.post(f"/users/999999/{path}/").status_code == 404

    def test_actions_are_post_only(self, admin, user):
        # A GET on block only asks (tests/test_screens_first_use.py); on a POST-only
        # action it is a 405 page.
        assert admin.get(f"/users/{user.pk}/block/").status_code == 200
        assert admin.get(f"/users/{user.pk}/password-reset/").status_code == 405
        user.refresh_from_db()
        assert user.is_active


class TestBlockDelete:
    def test_block_ends_sessions_at_once_and_unblock(self, admin, user):
        victim = Client()
        login(victim, user.email, PASSWORD)
        assert victim.get("/").status_code == 200
        assert admin.post(f"/users/{user.pk}/block/").status_code == 302
        assert victim.get("/").status_code == 302
        assert login(Client(), user.email, PASSWORD).status_code == 200
        assert AuditEvent.objects.get(action="user.blocked").details["sessions_ended"] == 1
        admin.post(f"/users/{user.pk}/unblock/")
        assert login(Client(), user.email, PASSWORD).status_code == 302

    def test_delete_asks_then_keeps_audit_readable(self, admin, user):
        page = admin.get(f"/users/{user.pk}/delete/")
        assert "Delete ada@shop.example?" in page.content.decode()
        login(Client(), user.email, "wrong password 1")  # an event about them
        pk = user.pk
        assert admin.post(f"/users/{pk}/delete/").status_code == 302
        assert not User.objects.filter(pk=pk).exists()
        assert AuditEvent.objects.filter(action="login.failed", target_label=user.email).exists()
        deleted = AuditEvent.objects.get(action="user.deleted")
        assert deleted.target_label == "ada@shop.example" and deleted.target_id == str(pk)
        assert "ada@shop.example" in admin.get("/audit/?target=ada").content.decode()

    def test_admin_cannot_block_delete_or_unroot_themself(self, admin, root_user):
        UserFactory(groups=["root"])  # another root exists: the rule is about oneself
        follow = admin.post(f"/users/{root_user.pk}/block/", follow=True)
        assert "You cannot block your own account" in follow.content.decode()
        follow = admin.post(f"/users/{root_user.pk}/delete/", follow=True)
        assert "You cannot delete your own account" in follow.content.decode()
        response = admin.post(f"/users/{root_user.pk}/", _form(email=root_user.email, groups=[]))
        assert "You cannot take permissions away from yourself" in response.content.decode()
        root_user.refresh_from_db()
        assert root_user.is_active and root_user.groups.filter(name="root").exists()

    def test_narrow_admin_cannot_block_delete_or_unroot_a_root(self, client):
        # An admin without root (users:* only) against a root member: whether
        # or not another root exists, the root holds more than the admin.
        role = RoleFactory()
        RuleFactory(role=role, pattern="backoffice:users:*")
        helper = UserFactory(groups=[GroupFactory(roles=[role])])
        only_root = UserFactory(email="only@shop.example", groups=["root"])
        UserFactory(groups=["root"])
        login(client, helper.email, PASSWORD)
        follow = client.post(f"/users/{only_root.pk}/block/", follow=True)
        assert "only@shop.example holds permissions you do not" in follow.content.decode()
        follow = client.post(f"/users/{only_root.pk}/delete/", follow=True)
        assert "you cannot change this account" in follow.content.decode()
        response = client.post(f"/users/{only_root.pk}/", _form(email=only_root.email, groups=[]))
        assert "holds permissions you do not" in response.content.decode()
        only_root.refresh_from_db()
        assert only_root.is_active and only_root.groups.filter(name="root").exists()
        refused = AuditEvent.objects.filter(
            action="access.grant_refused", target_label=only_root.email
        )
        assert refused.count() == 3
        assert all(e.details["reason"] == "rank" for e in refused)

    def test_trigger_password_reset_mail(self, admin, user):
        assert admin.post(f"/users/{user.pk}/password-reset/").status_code == 302
        assert mail.outbox[0].to == [user.email]
        assert "one hour" in mail.outbox[0].body
        event = AuditEvent.objects.get(action="password.reset.requested")
        assert event.actor.email == "root@shop.example"


class TestForbidden:
    @pytest.mark.parametrize(
        "method,path",
        [
            ("get", "/users/"),
            ("get", "/users/add/"),
            ("post", "/users/add/"),
            ("get", "/users/{pk}/"),
            ("post", "/users/{pk}/block/"),
            ("post", "/users/{pk}/delete/"),
            ("post", "/users/{pk}/password-reset/"),
            ("get", "/groups/"),
            ("get", "/roles/"),
            ("get", "/audit/"),
            ("get", "/audit/export.csv"),
        ],
    )
    def test_plain_user_gets_403_and_nothing_changes(self, client, user, method, path):
        target = UserFactory(email="target@shop.example")
        plain = UserFactory(groups=["backoffice-users"])
        login(client, plain.email, PASSWORD)
        response = getattr(client, method)(path.format(pk=target.pk), _form())
        assert response.status_code == 403
        target.refresh_from_db()
        assert target.is_active and User.objects.filter(email="alan@shop.example").count() == 0

    def test_a_refusal_is_one_log_line_without_traceback(self, client, caplog):
        plain = UserFactory(groups=["backoffice-users"])
        login(client, plain.email, PASSWORD)
        with caplog.at_level(logging.WARNING):
            assert client.get("/users/").status_code == 403
        (record,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert record.name == "iam.access" and not record.exc_info
        assert (
            record.getMessage() == f"forbidden: user {plain.pk} GET /users/ (backoffice:users:view)"
        )

    def test_view_only_admin_sees_no_edit_controls(self, client):
        role = RoleFactory()
        RuleFactory(role=role, pattern="backoffice:users:view")
        viewer = UserFactory(groups=[GroupFactory(roles=[role])])
        login(client, viewer.email, PASSWORD)
        html = client.get("/users/").content.decode()
        assert "Add user" not in html
        # The user page opens read-only: facts, no form to save, no action offered.
        page = client.get(f"/users/{viewer.pk}/").content.decode()
        assert "Save" not in page and 'method="post"' not in page.split("</header>", 1)[1]

    def test_anonymous_is_sent_to_login(self):
        response = Client().get("/users/add/")
        assert response.status_code == 302 and response["Location"] == "/login/?next=/users/add/"
