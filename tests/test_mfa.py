"""Account security: MFA set-up and policy, MFA at login, own password, own
sessions, recent authentication, admin MFA reset. TOTP codes are computed
here from the secret, as an authenticator app would."""

import re

import pytest
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import AuditEvent
from tests import conftest
from tests.conftest import login
from tests.factories import PASSWORD, UserFactory
from tests.support.mfa import activate_totp, totp

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a new and long passphrase 77"


def recovery_codes(client) -> list[str]:
    html = client.get("/2fa/recovery-codes/").content.decode()
    return re.findall(r"\b[0-9a-f]{8}\b", html)


@pytest.fixture
def mfa_policy(settings):
    settings.IAM_MFA_REQUIRED_GROUPS = ["root"]


class TestPolicy:
    def test_root_is_sent_to_setup_and_can_open_nothing_else(self, client, root_user, mfa_policy):
        login(client, root_user.email, PASSWORD)
        for path in ("/", "/users/", "/account/", "/audit/"):
            response = client.get(path)
            assert response.status_code == 302 and response["Location"] == "/2fa/totp/activate/"
        page = client.get("/2fa/totp/activate/")
        assert "two-factor authentication" in page.content.decode()
        assert 'src="data:image/svg+xml;base64,' in page.content.decode()  # the QR code
        # A security key or passkey is the other way through, and it opens.
        assert 'href="/2fa/webauthn/add/"' in page.content.decode()
        assert client.get("/2fa/webauthn/add/").status_code == 200
        assert client.post("/logout/").status_code == 302  # logging out stays possible

    def test_wrong_code_changes_nothing_then_setup_unlocks(self, client, root_user, mfa_policy):
        login(client, root_user.email, PASSWORD)
        page = client.get("/2fa/totp/activate/").content.decode()
        secret = re.search(r'id="authenticator_secret"[^>]*>([A-Z2-7]{16,})<', page).group(1)
        bad = client.post("/2fa/totp/activate/", {"code": "000000"})
        assert bad.status_code == 200 and "Incorrect code." in bad.content.decode()
        assert not Authenticator.objects.filter(user=root_user).exists()
        done = client.post("/2fa/totp/activate/", {"code": totp(secret)})
        assert done.status_code == 302
        assert client.get("/").status_code == 200
        types = set(Authenticator.objects.filter(user=root_user).values_list("type", flat=True))
        assert types == {"totp", "recovery_codes"}

    @pytest.mark.django_db(transaction=True)
    def test_setup_is_audited(self, client, mfa_policy, seed_groups):
        # allauth signals MFA changes once the transaction commits: real commits here.
        root = UserFactory(groups=["root"])
        login(client, root.email, PASSWORD)
        activate_totp(client)
        assert AuditEvent.objects.filter(action="mfa.added", actor=root).exists()

    def test_users_outside_required_groups_are_not_forced(self, client, user, mfa_policy):
        login(client, user.email, PASSWORD)
        assert client.get("/").status_code == 200

    def test_policy_is_answered_at_login_not_on_the_first_page(self, client, user, mfa_policy):
        login(client, user.email, PASSWORD)
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/").status_code == 200
        sql = " ".join(q["sql"] for q in queries.captured_queries)
        # The policy's query: is the user in one of the MFA-required groups?
        assert '"accounts_group"."name" IN' not in sql and "mfa_authenticator" not in sql

    def test_compliant_session_costs_no_policy_query(
        self, client, user, mfa_policy, django_assert_num_queries
    ):
        login(client, user.email, PASSWORD)
        client.get("/")
        # The user, and the session unless it is read through a shared cache,
        # and the dashboard's one question whether an access review waits for
        # this person (reviews.selectors.has_open_items); nothing for MFA.
        queries = (1 if settings.SESSION_ENGINE.endswith("cached_db") else 2) + 1
        with django_assert_num_queries(queries):
            assert client.get("/").status_code == 200


class TestLoginWithMFA:
    @pytest.fixture
    def secret(self, root_user, mfa_policy):
        setup = Client()
        login(setup, root_user.email, PASSWORD)
        return activate_totp(setup)

    def test_password_then_code(self, client, root_user, secret):
        response = login(client, root_user.email, PASSWORD)
        assert response.status_code == 302 and response["Location"] == "/2fa/authenticate/"
        assert client.get("/").status_code == 302  # not logged in yet
        bad = client.post("/2fa/authenticate/", {"code": "123456"})
        assert bad.status_code == 200 and "Incorrect code." in bad.content.decode()
        good = client.post("/2fa/authenticate/", {"code": totp(secret, step=-1)})
        assert good.status_code == 302
        assert client.get("/").status_code == 200
        assert AuditEvent.objects.filter(action="mfa.failed", actor=root_user).exists()

    def test_wrong_codes_are_throttled_like_passwords(self, client, root_user, secret):
        login(client, root_user.email, PASSWORD)
        for _ in range(5):
            client.post("/2fa/authenticate/", {"code": "000000"})
        response = client.post("/2fa/authenticate/", {"code": totp(secret, step=-1)})
        assert "Too many" in response.content.decode()
        assert client.get("/").status_code == 302

    def test_recovery_code_works_once(self, client, root_user, secret):
        viewer = Client()
        login(viewer, root_user.email, PASSWORD)
        viewer.post("/2fa/authenticate/", {"code": totp(secret, step=-1)})
        codes = recovery_codes(viewer)
        assert len(codes) == 10
        login(client, root_user.email, PASSWORD)
        assert client.post("/2fa/authenticate/", {"code": codes[0]}).status_code == 302
        assert client.get("/").status_code == 200
        again = Client()
        login(again, root_user.email, PASSWORD)
        refused = again.post("/2fa/authenticate/", {"code": codes[0]})
        assert refused.status_code == 200 and "Incorrect code." in refused.content.decode()


class TestOwnPassword:
    def test_change_ends_other_sessions_and_mails(self, client, user):
        other = Client()
        login(other, user.email, PASSWORD)
        other_key = other.session.session_key
        login(client, user.email, PASSWORD)
        response = client.post(
            "/password/change/",
            {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
        )
        assert response.status_code == 302
        assert client.get("/").status_code == 200  # this session stays
        assert other.get("/").status_code == 302
        assert not Session.objects.filter(session_key=other_key).exists()
        assert any("password" in m.subject.lower() for m in mail.outbox)
        assert AuditEvent.objects.get(action="password.changed").details["sessions_ended"] == 1

    @pytest.mark.parametrize(
        "data,error",
        [
            (
                {
                    "oldpassword": "wrong old pass 1",
                    "password1": NEW_PASSWORD,
                    "password2": NEW_PASSWORD,
                },
                "Please type your current password.",
            ),
            (
                {"oldpassword": PASSWORD, "password1": "short", "password2": "short"},
                "This password is too short.",
            ),
            (
                {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": "different"},
                "You must type the same password each time.",
            ),
            (
                {"oldpassword": PASSWORD, "password1": PASSWORD, "password2": PASSWORD},
                "The new password is the same as the current one.",
            ),
        ],
    )
    def test_bad_input_changes_nothing(self, client, user, data, error):
        login(client, user.email, PASSWORD)
        other = Client()
        login(other, user.email, PASSWORD)
        response = client.post("/password/change/", data)
        assert response.status_code == 200 and error in response.content.decode()
        user.refresh_from_db()
        assert user.check_password(PASSWORD)
        assert other.get("/").status_code == 200  # no other session ended
        assert not AuditEvent.objects.filter(action="password.changed").exists()
        assert mail.outbox == []

    def test_sso_only_user_cannot_set_a_local_password(self, client, user):
        login(client, user.email, PASSWORD)
        assert client.get("/password/set/").status_code == 404


class TestOwnSessions:
    def test_list_end_one_end_others(self, client, user):
        phone, tablet = Client(HTTP_USER_AGENT="Phone/1.0"), Client(HTTP_USER_AGENT="Tablet/2.0")
        login(phone, user.email, PASSWORD)
        login(tablet, user.email, PASSWORD)
        login(client, user.email, PASSWORD)
        html = client.get("/account/sessions/").content.decode()
        assert "Phone/1.0" in html and "Tablet/2.0" in html and "This session" in html
        from allauth.usersessions.models import UserSession

        phone_row = UserSession.objects.get(session_key=phone.session.session_key)
        assert client.post(f"/account/sessions/{phone_row.pk}/end/").status_code == 302
        assert phone.get("/").status_code == 302
        assert tablet.get("/").status_code == 200
        client.post("/account/sessions/end-others/")
        assert tablet.get("/").status_code == 302
        assert client.get("/").status_code == 200

    def test_cannot_end_someone_elses_session(self, client, user):
        stranger = UserFactory()
        other = Client()
        login(other, stranger.email, PASSWORD)
        from allauth.usersessions.models import UserSession

        row = UserSession.objects.get(user=stranger)
        login(client, user.email, PASSWORD)
        assert client.post(f"/account/sessions/{row.pk}/end/").status_code == 404
        assert other.get("/").status_code == 200


def age_authentication(client, seconds):
    """As if the last authentication was `seconds` earlier."""
    conftest.age_authentication(client.session, seconds)


class TestRecentAuthentication:
    def _age_authentication(self, client, seconds):
        age_authentication(client, seconds)

    def test_admin_action_after_ten_minutes_asks_password_then_replays(self, client, root_user):
        target = UserFactory(email="target@shop.example")
        login(client, root_user.email, PASSWORD)
        self._age_authentication(client, 11 * 60)
        response = client.post(f"/users/{target.pk}/block/")
        assert response.status_code == 302 and response["Location"].startswith("/reauthenticate/")
        target.refresh_from_db()
        assert target.is_active  # nothing happened yet
        done = client.post(response["Location"], {"password": PASSWORD})
        assert done.status_code == 302
        target.refresh_from_db()
        assert not target.is_active  # the interrupted POST was carried out

    def test_recent_login_needs_no_reauthentication(self, client, root_user):
        target = UserFactory(email="target@shop.example")
        login(client, root_user.email, PASSWORD)
        assert client.post(f"/users/{target.pk}/block/")["Location"] == f"/users/{target.pk}/"

    def test_turning_mfa_off_requires_reauthentication(self, client, root_user):
        login(client, root_user.email, PASSWORD)
        activate_totp(client)
        self._age_authentication(client, 11 * 60)
        response = client.get("/2fa/totp/deactivate/")
        assert response.status_code == 302 and "reauthenticate" in response["Location"]


class TestAdminMfaReset:
    def test_reset_is_audited_and_removes_authenticators(self, client, root_user):
        victim = UserFactory(email="lostphone@shop.example")
        phone = Client()
        login(phone, victim.email, PASSWORD)
        activate_totp(phone)
        login(client, root_user.email, PASSWORD)
        assert (
            "Reset two-factor authentication" in client.get(f"/users/{victim.pk}/").content.decode()
        )
        assert client.post(f"/users/{victim.pk}/mfa-reset/").status_code == 302
        assert not Authenticator.objects.filter(user=victim).exists()
        event = AuditEvent.objects.get(action="mfa.reset")
        assert event.actor == root_user and event.details["removed"] == ["recovery_codes", "totp"]
        follow = client.post(f"/users/{victim.pk}/mfa-reset/", follow=True)
        assert "has no two-factor authentication to reset" in follow.content.decode()

    def test_plain_user_cannot_reset(self, client, user):
        login(client, user.email, PASSWORD)
        assert client.post(f"/users/{user.pk}/mfa-reset/").status_code == 403


class TestSSOAndMFA:
    def test_sso_user_with_mfa_is_asked_for_the_code_unless_idp_did_mfa(self, client, settings):
        from tests.oidc_fake import FakeIdP
        from tests.support.sso import ADA, sso_login

        idp = FakeIdP()
        try:
            settings.IAM_SSO_PROVIDERS = {"fake": idp.oidc_config()}
            ada = UserFactory(email="ada@shop.example")
            setup = Client()
            login(setup, ada.email, PASSWORD)
            secret = activate_totp(setup)
            # Linked at an earlier login (tests/test_sso_linking.py: a first
            # login onto an account with a password waits for proof).
            ada.identities.create(provider="fake", issuer=idp.issuer, subject=ADA["sub"])
            response = sso_login(client, idp, ADA)
            assert response["Location"] == "/2fa/authenticate/"
            assert client.get("/").status_code == 302  # not logged in before the code
            assert (
                client.post("/2fa/authenticate/", {"code": totp(secret, step=-1)}).status_code
                == 302
            )
            assert client.get("/").status_code == 200
            event = AuditEvent.objects.filter(action="login.succeeded").latest("id")
            assert event.details == {"method": "sso:fake"}
            direct = Client()
            assert sso_login(direct, idp, {**ADA, "amr": ["mfa"]})["Location"] == "/"
        finally:
            idp.close()

    def test_amr_mfa_exempts_sso_login(self, client, settings):
        from tests.oidc_fake import FakeIdP
        from tests.support.sso import ADA, sso_login

        idp = FakeIdP()
        try:
            settings.IAM_MFA_REQUIRED_GROUPS = ["root"]
            settings.IAM_SSO_PROVIDERS = {"fake": idp.oidc_config()}
            UserFactory(email="ada@shop.example", groups=["root"], password="!")  # SSO only
            sso_login(client, idp, {**ADA, "amr": ["pwd", "mfa"]})
            assert client.get("/").status_code == 200
            other = Client()
            sso_login(other, idp, {**ADA, "amr": ["pwd"]})
            assert other.get("/")["Location"] == "/2fa/totp/activate/"
        finally:
            idp.close()


class TestMfaPages:
    @pytest.mark.parametrize(
        "path",
        [
            "/2fa/",
            "/2fa/totp/activate/",
            "/2fa/totp/deactivate/",
            "/2fa/totp/replace/",
            "/2fa/recovery-codes/",
            "/2fa/recovery-codes/download/",
            "/2fa/recovery-codes/generate/",
            "/2fa/reauthenticate/",
        ],
    )
    def test_anonymous_visitors_are_sent_to_login(self, client, path):
        for response in (client.get(path), client.post(path)):
            assert response.status_code == 302
            assert response["Location"].startswith("/login/")

    @pytest.mark.parametrize("path", ["/2fa/recovery-codes/", "/2fa/recovery-codes/download/"])
    def test_recovery_codes_need_a_recent_authentication(self, client, user, path):
        login(client, user.email, PASSWORD)
        activate_totp(client)
        assert client.get(path).status_code == 200
        age_authentication(client, 11 * 60)
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/reauthenticate/")

    def test_required_member_cannot_turn_mfa_off_but_can_replace_it(
        self, client, root_user, mfa_policy
    ):
        login(client, root_user.email, PASSWORD)
        old_secret = activate_totp(client)
        account = client.get("/account/").content.decode()
        assert "Replace authenticator app" in account and "Turn off" not in account
        page = client.get("/2fa/totp/deactivate/").content.decode()
        assert "cannot be turned off" in page
        client.post("/2fa/totp/deactivate/")
        assert Authenticator.objects.filter(user=root_user, type="totp").exists()
        # Replace: the new app's code must be right before the old one goes.
        page = client.get("/2fa/totp/replace/").content.decode()
        new_secret = re.search(r'id="authenticator_secret"[^>]*>([A-Z2-7]{16,})<', page).group(1)
        assert new_secret != old_secret
        bad = client.post("/2fa/totp/replace/", {"code": totp(old_secret)})
        assert "Incorrect code." in bad.content.decode()
        assert client.post("/2fa/totp/replace/", {"code": totp(new_secret)}).status_code == 302
        assert Authenticator.objects.filter(user=root_user, type="totp").count() == 1
        assert AuditEvent.objects.filter(action="mfa.replaced", actor=root_user).exists()
        phone = Client()
        login(phone, root_user.email, PASSWORD)
        refused = phone.post("/2fa/authenticate/", {"code": totp(old_secret, step=-1)})
        assert "Incorrect code." in refused.content.decode()
        assert (
            phone.post("/2fa/authenticate/", {"code": totp(new_secret, step=-1)}).status_code == 302
        )

    def test_others_may_still_turn_mfa_off(self, client, user, mfa_policy):
        login(client, user.email, PASSWORD)
        activate_totp(client)
        assert client.post("/2fa/totp/deactivate/").status_code == 302
        assert not Authenticator.objects.filter(user=user, type="totp").exists()
