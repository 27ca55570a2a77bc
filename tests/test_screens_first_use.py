"""The screens as a first-time admin meets them: forced MFA set-up, the user
page, search, confirmations, sort headers, what is offered, plain words."""

import csv
import io
import json
import re

import pytest
from django.core import mail
from django.test import Client

from accounts.models import AuditEvent
from backoffice.audit_display import detail_lines
from backoffice.useragent import describe
from tests.conftest import age_authentication, login
from tests.factories import PASSWORD, GroupFactory, RoleFactory, RuleFactory, UserFactory
from tests.support.mfa import activate_totp, totp

pytestmark = pytest.mark.django_db

CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def _secret(html: str) -> str:
    return re.search(r'id="authenticator_secret"[^>]*>([A-Z2-7]{16,})<', html).group(1)


class TestForcedMfaSetup:
    def test_the_secret_stays_while_the_user_wanders_off_and_the_step_is_named(
        self, client, root_user, settings
    ):
        settings.IAM_MFA_REQUIRED_GROUPS = ["root"]
        login(client, root_user.email, PASSWORD)
        first = client.get("/2fa/totp/activate/").content.decode()
        assert "Step 1 of 2" in first
        assert client.get("/users/")["Location"] == "/2fa/totp/activate/"
        again = client.get("/2fa/totp/activate/").content.decode()
        secret = _secret(first)
        assert _secret(again) == secret
        done = client.post("/2fa/totp/activate/", {"code": totp(secret, step=1)})
        assert done.status_code == 302
        assert client.get("/users/").status_code == 200

    def test_a_new_setup_after_a_reset_gets_a_new_secret(self, client, root_user):
        login(client, root_user.email, PASSWORD)
        old = activate_totp(client)
        from allauth.mfa.models import Authenticator

        Authenticator.objects.filter(user=root_user).delete()  # as an admin's reset does
        login(client, root_user.email, PASSWORD)
        assert _secret(client.get("/2fa/totp/activate/").content.decode()) != old


class TestReauthOnlyBeforeAChange:
    def test_opening_an_edit_page_asks_nothing_saving_it_asks(self, admin, user):
        age_authentication(admin.session)
        assert admin.get(f"/users/{user.pk}/").status_code == 200
        assert admin.get(f"/users/{user.pk}/block/").status_code == 200  # the question
        asked = admin.post(f"/users/{user.pk}/block/")
        assert asked.status_code == 302 and asked["Location"].startswith("/reauthenticate/")
        user.refresh_from_db()
        assert user.is_active


class TestUserDetail:
    def test_shows_groups_status_sessions_identities_and_last_events(self, admin, user):
        from sso.models import Identity

        GroupFactory(name="support").memberships.create(user=user)
        Identity.objects.create(user=user, provider="okta", subject="sub-123", email=user.email)
        login(Client(HTTP_USER_AGENT=CHROME_LINUX), user.email, PASSWORD)
        admin.post(
            f"/users/{user.pk}/",
            {
                "first_name": "Augusta",
                "last_name": "Lovelace",
                "email": user.email,
                "groups": [],
                "status": "active",
            },
        )
        tabs = ("", "security/", "sessions/", "events/")
        html = "".join(admin.get(f"/users/{user.pk}/{tab}").content.decode() for tab in tabs)
        for text in (
            "ada@shop.example",
            "Active",
            "Chrome on Linux",
            "okta",
            "sub-123",
            "user.updated",
            "first name: Ada → Augusta",
            "login.succeeded",
        ):
            assert text in html, text

    def test_a_viewer_sees_it_but_not_the_audit_log_they_may_not_read(self, client, user):
        viewers = RoleFactory()
        RuleFactory(role=viewers, pattern="backoffice:users:view")
        viewer = UserFactory(groups=[GroupFactory(roles=[viewers])])
        login(client, viewer.email, PASSWORD)
        login(Client(HTTP_USER_AGENT=CHROME_LINUX, REMOTE_ADDR="10.9.8.7"), user.email, PASSWORD)
        details = client.get(f"/users/{user.pk}/").content.decode()
        assert "ada@shop.example" in details and '<form method="post" novalidate>' not in details
        html = client.get(f"/users/{user.pk}/sessions/").content.decode()
        assert "ada@shop.example" in html and "Chrome on Linux" in html
        assert "Last events" not in html and "10.9.8.7" not in html
        assert f"/users/{user.pk}/events/" not in html
        assert client.get(f"/users/{user.pk}/events/").status_code == 403
        assert f'href="/users/{user.pk}/"' in client.get("/users/").content.decode()
        assert client.post(f"/users/{user.pk}/", {"first_name": "X"}).status_code == 403

    def test_without_users_view_it_is_403(self, client, user):
        nobody = UserFactory(groups=["backoffice-users"])
        login(client, nobody.email, PASSWORD)
        assert client.get(f"/users/{user.pk}/view/").status_code == 403


class TestSearch:
    @pytest.mark.parametrize(
        "q,says",
        [
            ("x" * 101, "A search is 100 characters at most."),
            ("ada one two three four five", "Search with 5 words at most."),
        ],
    )
    def test_too_long_is_refused_and_lists_nobody(self, admin, user, q, says):
        response = admin.get("/users/", {"q": q})
        html = response.content.decode()
        assert response.status_code == 200
        assert says in html and "No users match." in html
        assert 'aria-invalid="true" aria-describedby="id_q_error"' in html

    def test_five_words_are_searched(self, admin, user):
        html = admin.get("/users/", {"q": "ada lovelace shop example ada"}).content.decode()
        assert "ada@shop.example" in html


class TestAuditDetails:
    def test_readable_lines_on_the_page_and_json_in_the_csv(self, admin, user):
        admin.post(
            f"/users/{user.pk}/",
            {
                "first_name": "Augusta",
                "last_name": "Lovelace",
                "email": user.email,
                "groups": [],
                "status": "active",
            },
        )
        html = admin.get("/audit/?action=user.updated").content.decode()
        assert "first name: Ada → Augusta" in html and "{&#x27;" not in html
        body = b"".join(admin.get("/audit/export.csv?action=user.updated").streaming_content)
        row = next(csv.DictReader(io.StringIO(body.decode())))
        assert json.loads(row["details"]) == {"first_name": ["Ada", "Augusta"]}

    def test_lines_for_changes_and_for_facts(self):
        assert detail_lines("user.updated", {"groups": [["a"], ["a", "b"]]}) == ["groups: a → a, b"]
        assert detail_lines(
            "user.blocked", {"status": ["active", "blocked"], "sessions_ended": 2}
        ) == [
            "status: active → blocked",
            "sessions ended: 2",
        ]
        # a list of two names is a list, not a change, outside the change actions
        assert detail_lines("group.created", {"roles": ["a", "b"]}) == ["roles: a, b"]
        assert detail_lines("login.failed", {"reason": ""}) == ["reason: —"]


class TestAskFirst:
    def test_block_asks_then_blocks(self, admin, user):
        page = admin.get(f"/users/{user.pk}/block/").content.decode()
        assert "Block ada@shop.example?" in page and "Block user" in page
        user.refresh_from_db()
        assert user.is_active
        assert f'href="/users/{user.pk}/block/"' in admin.get(f"/users/{user.pk}/").content.decode()
        admin.post(f"/users/{user.pk}/block/")
        user.refresh_from_db()
        assert not user.is_active

    def test_reset_mfa_asks_then_resets(self, admin, user):
        phone = Client()
        login(phone, user.email, PASSWORD)
        activate_totp(phone)
        page = admin.get(f"/users/{user.pk}/mfa-reset/").content.decode()
        assert "Reset the two-factor authentication of ada@shop.example?" in page
        assert AuditEvent.objects.filter(action="mfa.reset").count() == 0
        admin.post(f"/users/{user.pk}/mfa-reset/")
        assert AuditEvent.objects.filter(action="mfa.reset").count() == 1

    @pytest.mark.parametrize("action", ["block", "mfa-reset"])
    def test_the_question_page_is_no_way_around_the_right_or_the_rank(self, action, user):
        """The question (GET) and its button (POST) need the action's right,
        and the button still refuses a user above the asker."""
        from tests.support.people import admin_with, browser_of

        viewer = browser_of(admin_with("backoffice:users:view", "backoffice:users:edit"))
        assert viewer.get(f"/users/{user.pk}/{action}/").status_code == 403
        assert viewer.post(f"/users/{user.pk}/{action}/").status_code == 403
        right = "backoffice:users:block" if action == "block" else "backoffice:users:reset-mfa"
        narrow = browser_of(admin_with("backoffice:users:view", right))
        root = UserFactory(email="root@shop.example", groups=["root"])
        narrow.post(f"/users/{root.pk}/{action}/")
        root.refresh_from_db()
        assert root.is_active
        assert not AuditEvent.objects.filter(action__in=["user.blocked", "mfa.reset"]).exists()

    def test_get_on_a_post_only_url_is_a_page(self, admin, user):
        response = admin.get(f"/users/{user.pk}/password-reset/")
        assert response.status_code == 405 and response["Allow"] == "POST"
        assert "Not a page" in response.content.decode()
        assert mail.outbox == []

    def test_the_json_api_keeps_its_json_405(self, client):
        response = client.get("/oauth/token/")
        assert response.status_code == 405
        assert response["Content-Type"].startswith("application/json")


class TestSessionsShowBrowserAndSystem:
    @pytest.mark.parametrize(
        "ua,shown",
        [
            (CHROME_LINUX, "Chrome on Linux"),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
                "Firefox on Windows",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
                "Gecko) Version/18.1 Safari/605.1.15",
                "Safari on macOS",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
                "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
                "Safari on iOS",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/131.0.0.0 Mobile Safari/537.36",
                "Chrome on Android",
            ),
            ("curl/8.5.0", "curl"),
            ("", "Unknown"),
            ("something else", "Unknown"),
        ],
    )
    def test_describe(self, ua, shown):
        assert describe(ua) == shown

    def test_my_sessions_page(self, root_user):
        browser = Client(HTTP_USER_AGENT=CHROME_LINUX)
        login(browser, root_user.email, PASSWORD)
        html = browser.get("/account/sessions/").content.decode()
        assert ">Chrome on Linux</td>" in html


class TestSortHeaders:
    def test_the_sorted_column_says_its_order(self, admin):
        html = admin.get("/users/?sort=-email").content.decode()
        assert 'aria-sort="descending"><a href="?sort=email">Email' in html
        assert html.count("aria-sort=") == 1
        assert 'aria-sort="ascending"' in admin.get("/users/").content.decode()


class TestNotOfferedWhatWouldBeRefused:
    def test_root_group_name_and_delete_are_not_offered(self, admin):
        from accounts.models import Group

        root = Group.objects.get(name="root")
        html = admin.get(f"/groups/{root.pk}/").content.decode()
        assert re.search(r'<input[^>]*name="name"[^>]*disabled', html)
        assert "its name cannot change" in html
        assert f"/groups/{root.pk}/delete/" not in html
        assert "is built in and cannot be deleted" in html
        # posting anyway keeps the name (a disabled field takes its initial value)
        admin.post(
            f"/groups/{root.pk}/",
            {"name": "superusers", "roles": list(root.roles.all().values_list("pk", flat=True))},
        )
        root.refresh_from_db()
        assert root.name == "root"

    def test_group_with_members_and_role_in_use_offer_no_delete(self, admin, user):
        viewers = RoleFactory(name="viewers")
        group = GroupFactory(name="support", roles=[viewers])
        html = admin.get(f"/groups/{group.pk}/").content.decode()
        assert f"/groups/{group.pk}/delete/" in html  # empty: deletable
        group.memberships.create(user=user)
        html = admin.get(f"/groups/{group.pk}/").content.decode()
        assert f"/groups/{group.pk}/delete/" not in html and "remove its 1 member(s)" in html
        html = admin.get(f"/roles/{viewers.pk}/").content.decode()
        assert f"/roles/{viewers.pk}/delete/" not in html
        assert "take it away from its groups first" in html
        unused = RoleFactory(name="unused")
        assert f"/roles/{unused.pk}/delete/" in admin.get(f"/roles/{unused.pk}/").content.decode()


class TestRoleRules:
    def test_unknown_resource_is_refused_with_the_nearest_one_suggested(self, admin):
        response = admin.post(
            "/roles/add/", {"name": "typo", "rules": "allow backoffice:usres:view"}
        )
        html = response.content.decode()
        assert "matches no resource that exists" in html
        assert "did you mean backoffice:users:view?" in html  # one hint, not the registry
        assert "backoffice:api-clients:delete" not in html

    def test_the_page_says_comments_and_repeats_are_not_kept(self, admin):
        html = admin.get("/roles/add/").content.decode()
        assert "text after # (a comment) is not kept" in html
        admin.post(
            "/roles/add/",
            {
                "name": "r",
                "rules": "allow backoffice:users:view # why\nallow backoffice:users:view",
            },
        )
        from accounts.models import Role

        assert [r.pattern for r in Role.objects.get(name="r").rules.all()] == [
            "backoffice:users:view"
        ]


class TestAllauthPagesInOurWords:
    def test_log_in_not_sign_in_or_confirm_access(self, client, root_user, settings):
        login(client, root_user.email, PASSWORD)
        html = client.get("/reauthenticate/").content.decode()
        assert "Log in again to continue" in html and "Confirm Access" not in html
        html = client.get("/password/change/").content.decode()
        assert "Change password" in html and "Change Password" not in html
        # the policy is the field's help, described by it, not a free-floating list
        assert 'aria-describedby="id_password1_helptext"' in html
        assert '<div class="help" id="id_password1_helptext"><ul>' in html
        activate_totp(client)
        client.post("/logout/")
        login(client, root_user.email, PASSWORD)
        html = client.get("/2fa/authenticate/").content.decode()
        assert "Log in" in html and "Sign In" not in html


class TestMakeRunAndDemoAdmin:
    def test_make_run_port_reaches_the_server_and_demoadmin(self):
        import pathlib
        import subprocess

        root = pathlib.Path(__file__).resolve().parent.parent
        plan = subprocess.run(
            ["make", "-n", "-W", "pyproject.toml", "run", "PORT=8001"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "demoadmin --port 8001" in plan and "runserver localhost:8001" in plan

    def test_demoadmin_prints_the_port_and_a_lost_password_can_be_replaced(self, seed_groups):
        from django.core.management import call_command

        out = io.StringIO()
        call_command("demoadmin", "--port", "8001", stdout=out)
        text = out.getvalue()
        assert "http://localhost:8001/login/" in text and "8000" not in text
        first = re.search(r"password: (\S+)", text).group(1)
        assert login(Client(), "admin@example.com", first).status_code == 302

        out = io.StringIO()
        call_command("demoadmin", "--port", "8001", stdout=out)
        assert "exists" in out.getvalue() and "--new-password" in out.getvalue()

        out = io.StringIO()
        call_command("demoadmin", "--new-password", stdout=out)
        second = re.search(r"password: (\S+)", out.getvalue()).group(1)
        assert second != first
        assert login(Client(), "admin@example.com", first).status_code == 200  # refused
        assert login(Client(), "admin@example.com", second).status_code == 302
        assert AuditEvent.objects.filter(action="password.reset.completed").count() == 1

    def test_a_bad_port_is_one_line_and_exit_1(self, seed_groups):
        from django.core.management import call_command

        err = io.StringIO()
        with pytest.raises(SystemExit) as exited:
            call_command("demoadmin", "--port", "0", stderr=err)
        assert exited.value.code == 1 and "is not a port" in err.getvalue()


class TestMarkupForAssistiveTechnology:
    """What axe cannot see (tests/e2e/test_accessibility.py runs it on every page)."""

    def test_login_errors_are_tied_to_the_inputs(self, client, user):
        html = login(client, user.email, "wrong password").content.decode()
        assert '<div class="alert" role="alert" id="form-error">' in html
        for name in ("login", "password"):
            tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', html).group(0)
            assert 'aria-invalid="true"' in tag and "form-error" in tag

    def test_field_errors_and_help_have_the_ids_the_inputs_name(self, admin):
        html = admin.post("/users/add/", {"email": "not an address"}).content.decode()
        tag = re.search(r'<input[^>]*name="email"[^>]*>', html).group(0)
        assert 'aria-describedby="id_email_error"' in tag and 'aria-invalid="true"' in tag
        assert 'id="id_email_error"' in html
        for ref in set(re.findall(r'aria-describedby="([^"]+)"', html)):
            for one in ref.split():
                assert f'id="{one}"' in html, one

    def test_choice_groups_are_fieldsets_with_a_legend(self, admin):
        html = admin.get("/users/add/").content.decode()
        assert re.search(
            r'<fieldset class="choices"[^>]*>\s*<legend class="label">Groups</legend>', html
        )
        assert re.search(
            r'<fieldset class="choices"[^>]*>\s*<legend class="label">Status</legend>', html
        )

    def test_messages_sit_in_one_status_region_and_filters_are_labelled(self, admin, user):
        admin.post(f"/users/{user.pk}/block/")
        html = admin.get("/users/").content.decode()
        assert re.search(r'<div role="status">\s*<ul class="messages">\s*<li class="msg', html)
        assert '<label class="visually-hidden" for="id_status">Status</label>' in html
        assert '<label class="visually-hidden" for="id_group">Group</label>' in html
        assert '<a class="skip-link" href="#main">' in html and '<main id="main"' in html
