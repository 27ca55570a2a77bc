"""allauth's pages as the product shows them: only the buttons that can work,
the true reason for the MFA policy, a first password that says "set", the
MFA overview and forms in our words, and a forced set-up that ends with
"Continue" to where the login was going."""

import re

import pytest
from django.core import mail
from django.test import Client

from tests.conftest import login
from tests.factories import PASSWORD, GroupFactory, RuleFactory, UserFactory
from tests.support.mfa import activate_totp, totp
from tests.support.passkeys import HOST, add_key
from tests.webauthn_soft import SoftPasskey

pytestmark = pytest.mark.django_db


@pytest.fixture
def mfa_policy(settings):
    settings.IAM_MFA_REQUIRED_GROUPS = ["root"]


def _second_step(email: str) -> str:
    client = Client(HTTP_HOST=HOST)
    assert login(client, email, PASSWORD)["Location"] == "/2fa/authenticate/"
    return client.get("/2fa/authenticate/").content.decode()


class TestSecurityKeyOfferedOnlyToItsHolder:
    def test_mfa_step_without_a_key_offers_no_key_button(self, seed_groups):
        ada = UserFactory(email="ada@shop.example")
        client = Client(HTTP_HOST=HOST)
        login(client, ada.email, PASSWORD)
        activate_totp(client)
        html = _second_step(ada.email)
        assert "Use a security key" not in html and "webauthn.js" not in html
        assert "Code from your authenticator app" in html

    def test_mfa_step_with_a_key_offers_it_and_a_note_for_browsers_that_cannot(self, seed_groups):
        ada = UserFactory(email="ada@shop.example")
        client = Client(HTTP_HOST=HOST)
        login(client, ada.email, PASSWORD)
        add_key(client, SoftPasskey(), passwordless=False)
        html = _second_step(ada.email)
        assert 'id="mfa_webauthn_authenticate"' in html and "data-webauthn-button" in html
        assert "it needs HTTPS or localhost" in html  # the note the script shows
        assert '<script src="/static/js/webauthn-support.js"></script>' in html

    def test_add_key_page_has_the_note_and_our_labels(self, client, user):
        login(client, user.email, PASSWORD)
        html = client.get("/2fa/webauthn/add/", HTTP_HOST=HOST).content.decode()
        assert "data-webauthn-note" in html and "data-webauthn-button" in html
        assert "Passkey: log in with this key alone, without a password" in html
        assert "Passwordless" not in html and "Add Security Key" not in html
        assert re.search(r"<label[^>]*>\s*Name\s*</label>", html)


class TestTheTrueReasonForMfa:
    def test_covered_by_a_permission_is_told_so_and_a_member_its_group(
        self, mfa_policy, seed_groups
    ):
        ops = GroupFactory(name="ops", roles=[RuleFactory(pattern="backoffice:users:view").role])
        linus = UserFactory(email="linus@shop.example", groups=[ops])
        grace = UserFactory(email="grace@shop.example", groups=["root"])
        pages = {}
        for person in (linus, grace):
            client = Client()
            login(client, person.email, PASSWORD)
            pages[person] = client.get("/", follow=True).content.decode()
        assert "Accounts with rights like those of root must use two-factor" in pages[linus]
        assert "Your group requires" not in pages[linus]
        assert "Your group requires two-factor authentication." in pages[grace]


class TestFirstPassword:
    def test_an_invitation_ends_with_set_a_reset_with_changed(self, admin):
        from accounts.models import Group
        from tests.support.resets import link_from_mail, request_reset, set_password

        form = {
            "email": "alan@shop.example",
            "first_name": "Alan",
            "last_name": "Turing",
            "status": "active",
            "password_mode": "invite",
            "groups": [Group.objects.get(name="backoffice-users").pk],
        }
        assert admin.post("/users/add/", form).status_code == 302
        link = re.search(r"http://testserver(/password/reset/key/\S+/)", mail.outbox[0].body)[1]
        newcomer = Client()
        set_password(newcomer, link)
        html = newcomer.get("/password/reset/key/done/").content.decode()
        assert "Your password is set. You can now log in." in html
        assert "other session" not in html and "changed" not in html.lower()

        # A later reset of the same account is a change: it says so.
        request_reset(newcomer, "alan@shop.example")
        set_password(newcomer, link_from_mail(mail.outbox[-1]), password="another passphrase 43")
        html = newcomer.get("/password/reset/key/done/").content.decode()
        assert "Password changed" in html and "Every other session" in html
        assert "Your password is set. You can now log in." not in html


class TestMfaOverviewInOurWords:
    def test_overview_has_sentence_case_rows_and_a_quiet_turn_off(self, client, user):
        login(client, user.email, PASSWORD)
        activate_totp(client)
        html = client.get("/2fa/").content.decode()
        for heading in (
            "Two-factor authentication",
            "Security keys and passkeys",
            "Recovery codes",
        ):
            assert heading in html
        for allauth_words in ("Two-Factor Authentication", "Deactivate", "Security Keys", "<li>"):
            assert allauth_words not in html.split("<main", 1)[1]
        assert re.search(
            r'class="btn btn-danger-quiet" href="/2fa/totp/deactivate/">Turn off', html
        )
        confirm = client.get("/2fa/totp/deactivate/").content.decode()
        assert "Turn off the authenticator app?" in confirm and "Deactivate" not in confirm

    def test_labels_have_no_trailing_colon_nor_title_case(self, client, user):
        login(client, user.email, PASSWORD)
        html = client.get("/password/change/").content.decode()
        assert "Current password" in html and "Current Password" not in html
        labels = re.findall(r"<label[^>]*>([^<]+)</label>", html)
        assert labels and not [label for label in labels if label.strip().endswith(":")]


class TestForcedSetupEndsWithContinue:
    def test_recovery_codes_page_continues_to_where_the_login_went(
        self, client, root_user, mfa_policy
    ):
        client.post("/login/?next=/users/", {"login": root_user.email, "password": PASSWORD})
        assert client.get("/users/")["Location"] == "/2fa/totp/activate/"
        page = client.get("/2fa/totp/activate/").content.decode()
        secret = re.search(r'id="authenticator_secret"[^>]*>([A-Z2-7]{16,})<', page).group(1)
        done = client.post("/2fa/totp/activate/", {"code": totp(secret)})
        assert done["Location"] == "/2fa/recovery-codes/"
        codes = client.get("/2fa/recovery-codes/").content.decode()
        assert re.search(
            r'class="btn btn-primary" href="/users/" data-testid="mfa-continue"', codes
        )
        assert client.get("/users/").status_code == 200
        # Once followed, the recovery codes page is a plain page again.
        again = client.get("/2fa/recovery-codes/").content.decode()
        assert "mfa-continue" not in again
