"""SSO first login onto an existing account: the link needs proof of control.

Issue 20, finding 1 (a) and (b): an e-mail address someone else holds or
pre-registered must not carry what ROLE_MAP gives (root) to whoever holds
that account's password and second factor. A first login whose address
matches an account with a local credential (password, authenticator app,
security key or passkey, recovery codes) is linked only once the person
proves control in this browser (the account's own password, then its
second factor), or by removing those credentials (and ending the account's
sessions and tokens). Mapped groups apply only when the login completes,
after the MFA step.

Everything goes through the doors a browser uses: the login and user pages,
the in-process OpenID provider (tests/oidc_fake.py), the link page.
"""

import re
from datetime import timedelta

import pytest
from allauth.mfa.models import Authenticator
from allauth.usersessions.models import UserSession
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEvent, Group, Membership, User
from sso.models import Identity
from tests.conftest import login
from tests.factories import PASSWORD, UserFactory
from tests.support.mfa import activate_totp, totp
from tests.support.people import admin_with
from tests.support.sso import CLAIMS, OWNER

pytestmark = pytest.mark.django_db

INITIAL = "an initial password 4 the owner"
OWN = "my very own secret passphrase 9"
LINK_PAGE = "/sso/link/"


def logged_in_as(client) -> int | None:
    user_id = client.session.get("_auth_user_id")
    return int(user_id) if user_id else None


def groups_of(user) -> set[str]:
    return set(User.objects.get(pk=user.pk).groups.values_list("name", flat=True))


def linked(proof=None):
    """The sso.linked events' details (without the subject, checked once;
    every address here is vouched for by `email_verified`)."""
    rows = AuditEvent.objects.filter(action="sso.linked")
    details = [e.details for e in rows if proof is None or e.details.get("proof") == proof]
    assert all(d["email_vouched_by"] == "email_verified" for d in details), details
    return [
        {k: v for k, v in d.items() if k not in ("subject", "email_vouched_by")} for d in details
    ]


def password_login(client, email, password, code_secret=None):
    """The login form, then the MFA step when asked (with this secret's code)."""
    response = login(client, email, password)
    if response.status_code == 302 and response["Location"] == "/2fa/authenticate/":
        if code_secret is None:
            return response
        response = client.post("/2fa/authenticate/", {"code": totp(code_secret)})
    return response


# --- issue 20, 1 (a) and (b) ------------------------------------------------------------


class TestIssue20Attacks:
    def test_a_squatted_address_does_not_put_the_squatters_credentials_into_root(self, role_map):
        """(a) A narrow admin holding only users:edit takes the address of a
        future IT admin who has no account yet. (The address change is made
        directly here: h2 makes the screen's change wait for a mailed
        confirmation; this test is about what the first SSO login does with
        an account that holds the address, whoever put it there.)"""
        attacker = admin_with(
            "backoffice:users:view", "backoffice:users:edit", email="mallory@shop.example"
        )
        browser = Client()
        assert login(browser, attacker.email, PASSWORD).status_code == 302
        secret = activate_totp(browser)  # the attacker's own authenticator app
        User.objects.filter(pk=attacker.pk).update(email=OWNER)

        owner = Client()
        response = role_map.sso_login(owner, CLAIMS)
        # Not linked, not logged in, no root: the owner is asked to prove it.
        assert response.status_code == 302 and response["Location"] == LINK_PAGE
        assert logged_in_as(owner) is None
        assert not Identity.objects.exists()
        assert "root" not in groups_of(attacker)
        page = owner.get(LINK_PAGE).content.decode()
        assert OWNER in page and "know its password" in page

        # The attacker, meanwhile, still reaches nothing more than before.
        attacker_browser = Client()
        password_login(attacker_browser, OWNER, PASSWORD, code_secret=secret)
        assert logged_in_as(attacker_browser) == attacker.pk
        assert "root" not in groups_of(attacker)

        # The owner does not know that password: link by removing every
        # local credential. Root comes with the link, the squatter's
        # password, authenticator and session go.
        response = owner.post("/sso/link/takeover/")
        assert response.status_code == 302
        assert logged_in_as(owner) == attacker.pk
        assert "root" in groups_of(attacker)
        assert not Authenticator.objects.filter(user=attacker).exists()
        assert not User.objects.get(pk=attacker.pk).has_usable_password()
        assert attacker_browser.get("/").status_code == 302  # their session ended
        again = Client()
        password_login(again, OWNER, PASSWORD, code_secret=secret)
        assert logged_in_as(again) is None
        assert {"password", "totp"} <= set(linked("credentials_removed")[0]["removed"])

    def test_b_an_initial_password_from_a_narrow_admin_does_not_reach_root(self, role_map):
        """(b) A narrow admin holding only users:create pre-registers the
        future IT admin with an initial password (which they know). Even
        when the owner types that very password to prove the link, the
        password proves nothing about who else holds it: it does not link,
        and the link the owner can make removes it."""
        creator = admin_with(
            "backoffice:users:view", "backoffice:users:create", email="eve@shop.example"
        )
        browser = Client()
        assert login(browser, creator.email, PASSWORD).status_code == 302
        response = browser.post(
            "/users/add/",
            {
                "first_name": "Irene",
                "last_name": "Admin",
                "email": OWNER,
                "status": "active",
                "password_mode": "password",
                "password1": INITIAL,
                "password2": INITIAL,
            },
        )
        assert response.status_code == 302, response.content.decode()[:1000]
        target = User.objects.get(email=OWNER)

        owner = Client()
        response = role_map.sso_login(owner, CLAIMS)
        assert response.status_code == 302 and response["Location"] == LINK_PAGE
        assert "root" not in groups_of(target)
        # The owner knows the initial password (the admin gave it to them):
        # it is refused as proof, and nothing is linked.
        response = owner.post("/sso/link/password/", {"password": INITIAL})
        assert response.status_code == 200
        assert "cannot show that the account is yours alone" in response.content.decode()
        assert logged_in_as(owner) is None and not Identity.objects.exists()
        assert "root" not in groups_of(target)

        owner.post("/sso/link/takeover/")
        assert logged_in_as(owner) == target.pk and "root" in groups_of(target)
        # The narrow admin's password no longer opens the account.
        attacker = Client()
        login(attacker, OWNER, INITIAL)
        assert logged_in_as(attacker) is None
        assert linked("credentials_removed")[0]["removed"] == ["password"]


# --- how a link is proven -----------------------------------------------------------------


class TestProofs:
    def test_no_local_credential_links_at_once(self, role_map):
        user = UserFactory(email=OWNER, password="!")
        client = Client()
        response = role_map.sso_login(client, CLAIMS)
        assert response["Location"] == "/2fa/totp/activate/" or response["Location"] == "/"
        assert logged_in_as(client) == user.pk
        assert "root" in groups_of(user)
        assert linked() == [{"provider": "fake", "proof": "provider_vouched"}]
        event = AuditEvent.objects.get(action="sso.linked")
        assert event.details["subject"] == CLAIMS["sub"] and event.target_id == str(user.pk)

    def test_auto_provisioned_account_is_a_new_account(self, fake, settings):
        Group.objects.get_or_create(name="backoffice-users")
        settings.IAM_SSO_PROVIDERS = {"fake": fake.oidc_config(strategy="auto-provision")}
        client = Client()
        fake.sso_login(client, CLAIMS)
        assert logged_in_as(client) == User.objects.get(email=OWNER).pk
        assert linked() == [{"provider": "fake", "proof": "new_account"}]

    def test_own_password_proves_it(self, role_map, password):
        user = UserFactory(email=OWNER)
        User.objects.filter(pk=user.pk).update(password_proven_for=OWNER)
        client = Client()
        assert role_map.sso_login(client, CLAIMS)["Location"] == LINK_PAGE
        wrong = client.post("/sso/link/password/", {"password": "not it at all"})
        assert wrong.status_code == 200 and logged_in_as(client) is None
        assert AuditEvent.objects.filter(action="login.failed", target_id=user.pk).exists()
        response = client.post("/sso/link/password/", {"password": password})
        assert response.status_code == 302 and logged_in_as(client) == user.pk
        assert Identity.objects.get(user=user).subject == CLAIMS["sub"]
        assert User.objects.get(pk=user.pk).has_usable_password()  # kept: proven
        assert "root" in groups_of(user)
        assert linked() == [{"provider": "fake", "proof": "password"}]
        event = AuditEvent.objects.filter(action="login.succeeded").latest("id")
        assert event.details == {"method": "sso:fake"}

    def test_own_password_and_second_factor_prove_it(self, role_map, password):
        user = UserFactory(email=OWNER)
        User.objects.filter(pk=user.pk).update(password_proven_for=OWNER)
        browser = Client()
        login(browser, OWNER, password)
        secret = activate_totp(browser)

        client = Client()
        assert role_map.sso_login(client, CLAIMS)["Location"] == LINK_PAGE
        response = client.post("/sso/link/password/", {"password": password})
        assert response["Location"] == "/2fa/authenticate/"
        # Stopped at the MFA step: nothing linked, no group given.
        assert logged_in_as(client) is None and not Identity.objects.exists()
        assert "root" not in groups_of(user)
        response = client.post("/2fa/authenticate/", {"code": totp(secret)})
        assert response.status_code == 302 and logged_in_as(client) == user.pk
        assert Identity.objects.filter(user=user).exists()
        assert "root" in groups_of(user)
        assert Authenticator.objects.filter(user=user, type="totp").exists()  # kept
        assert linked() == [{"provider": "fake", "proof": "password+mfa"}]

    def test_the_provider_doing_mfa_does_not_replace_the_accounts_own_second_factor(
        self, role_map, password
    ):
        user = UserFactory(email=OWNER)
        User.objects.filter(pk=user.pk).update(password_proven_for=OWNER)
        browser = Client()
        login(browser, OWNER, password)
        activate_totp(browser)
        client = Client()
        role_map.sso_login(client, {**CLAIMS, "amr": ["pwd", "mfa"]})
        response = client.post("/sso/link/password/", {"password": password})
        assert response["Location"] == "/2fa/authenticate/"
        assert not Identity.objects.exists()

    def test_takeover_removes_every_local_credential_and_ends_sessions_and_tokens(
        self, role_map, password, settings
    ):
        from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
        from oauth2_provider.models import AccessToken

        user = UserFactory(email=OWNER)
        elsewhere = Client()
        login(elsewhere, OWNER, password)
        activate_totp(elsewhere)
        RecoveryCodes.activate(user)
        AccessToken.objects.create(
            user=user, token="tok-" + "x" * 40, expires=timezone.now() + timedelta(hours=1)
        )
        assert UserSession.objects.filter(user=user).exists()

        settings.IAM_MFA_REQUIRED_GROUPS = ["root"]
        client = Client()
        assert role_map.sso_login(client, CLAIMS)["Location"] == LINK_PAGE
        response = client.post("/sso/link/takeover/")
        assert response.status_code == 302 and logged_in_as(client) == user.pk
        user.refresh_from_db()
        assert not user.has_usable_password()
        assert not Authenticator.objects.filter(user=user).exists()
        assert elsewhere.get("/").status_code == 302  # the other session ended
        assert [s.session_key for s in UserSession.objects.filter(user=user)] == [
            client.session.session_key
        ]
        assert not AccessToken.objects.filter(user=user).exists()
        assert AuditEvent.objects.filter(action="api.token.revoked", target_id=user.pk).exists()
        (event,) = linked()
        assert event == {
            "provider": "fake",
            "proof": "credentials_removed",
            "removed": ["password", "recovery_codes", "totp"],
            "sessions_ended": 1,
        }
        # Root now needs MFA, and the account has none any more: set up at once.
        assert client.get("/")["Location"] == "/2fa/totp/activate/"


# --- the link page ------------------------------------------------------------------------


class TestLinkPage:
    def test_pending_link_belongs_to_this_browser_and_expires(self, role_map):
        user = UserFactory(email=OWNER)
        client = Client()
        role_map.sso_login(client, CLAIMS)
        kept = client.session["sso_link"]
        assert kept["groups"] == ["root"] and kept["user"] == user.pk
        assert "id_token" not in str(kept) and "eyJ" not in str(kept)  # no token kept
        # Another browser has nothing to link.
        other = Client()
        assert other.get(LINK_PAGE)["Location"] == "/login/"
        assert other.post("/sso/link/takeover/")["Location"] == "/login/"
        assert User.objects.get(pk=user.pk).has_usable_password()
        # Ten minutes later this one has nothing either.
        session = client.session
        session["sso_link"]["at"] -= 11 * 60
        session.save()
        assert client.post("/sso/link/takeover/")["Location"] == "/login/"
        assert User.objects.get(pk=user.pk).has_usable_password()
        assert not Identity.objects.exists() and logged_in_as(client) is None

    def test_the_page_is_translated_and_its_posts_need_csrf(self, role_map):
        UserFactory(email=OWNER)
        client = Client(enforce_csrf_checks=True)
        start = client.get("/login/")
        token = start.cookies["csrftoken"].value
        response = client.post("/sso/fake/login/", {"csrfmiddlewaretoken": token})
        client.get(role_map.authorize(response["Location"], CLAIMS))
        page = client.get(LINK_PAGE, HTTP_ACCEPT_LANGUAGE="de")
        assert "Konto verknüpfen" in page.content.decode()
        assert client.post("/sso/link/takeover/").status_code == 403
        assert User.objects.get(email=OWNER).has_usable_password()

    def test_an_address_changed_while_the_link_waits_links_nothing(self, role_map):
        user = UserFactory(email=OWNER)
        client = Client()
        role_map.sso_login(client, CLAIMS)
        User.objects.filter(pk=user.pk).update(email="someone.else@shop.example")
        response = client.post("/sso/link/takeover/")
        assert response["Location"] == "/login/" and logged_in_as(client) is None
        assert not Identity.objects.exists()
        assert User.objects.get(pk=user.pk).has_usable_password()
        failed = AuditEvent.objects.filter(action="sso.failed").latest("id")
        assert failed.details["reason"] == "link_address_changed"

    @pytest.mark.parametrize("value", ["", "\x00", "x" * 5000, "é\u202e\r\n"])
    def test_odd_passwords_are_a_form_error_never_a_500(self, role_map, value):
        user = UserFactory(email=OWNER, password_proven_for=OWNER)
        client = Client()
        client.raise_request_exception = False
        role_map.sso_login(client, CLAIMS)
        response = client.post("/sso/link/password/", {"password": value})
        assert response.status_code == 200 and logged_in_as(client) is None
        assert "not this account" in response.content.decode()
        assert not Identity.objects.filter(user=user).exists()

    def test_cancel_forgets_the_pending_link(self, role_map):
        UserFactory(email=OWNER)
        client = Client()
        role_map.sso_login(client, CLAIMS)
        assert client.post("/sso/link/cancel/")["Location"] == "/login/"
        assert client.get(LINK_PAGE)["Location"] == "/login/"
        assert not Identity.objects.exists()
        refused = AuditEvent.objects.get(action="sso.link_refused")
        assert refused.details == {"provider": "fake", "reason": "not_my_account"}

    def test_wrong_passwords_are_throttled_like_the_login_form(self, role_map):
        user = UserFactory(email=OWNER)
        User.objects.filter(pk=user.pk).update(password_proven_for=OWNER)
        client = Client()
        role_map.sso_login(client, CLAIMS)
        for _ in range(12):
            response = client.post("/sso/link/password/", {"password": "wrong guess"})
        assert "Too many failed login attempts" in response.content.decode()
        response = client.post("/sso/link/password/", {"password": PASSWORD})
        assert logged_in_as(client) is None


# --- mapped groups apply when the login completes ---------------------------------------------


class TestGroupsAfterMfa:
    def test_returning_login_that_stops_at_mfa_leaves_groups_unchanged(self, role_map, password):
        user = UserFactory(email=OWNER)
        browser = Client()
        login(browser, OWNER, password)
        secret = activate_totp(browser)
        Identity.objects.create(
            user=user, provider="fake", issuer=role_map.issuer, subject=CLAIMS["sub"]
        )
        Membership.objects.create(user=user, group=Group.objects.get(name="ops"), source="sso:fake")

        client = Client()
        response = role_map.sso_login(client, CLAIMS)  # roles: it-admin, not ops any more
        assert response["Location"] == "/2fa/authenticate/"
        assert groups_of(user) == {"ops"}
        assert not AuditEvent.objects.filter(action__startswith="sso.groups").exists()
        client.post("/2fa/authenticate/", {"code": totp(secret)})
        assert logged_in_as(client) == user.pk
        assert groups_of(user) == {"root"}
        assert AuditEvent.objects.filter(action="sso.groups.synced").count() == 1

    def test_sync_held_back_still_holds(self, role_map, root_user):
        """The last manager's mapped root is kept even when the provider drops it."""
        Membership.objects.filter(user=root_user).update(source="sso:fake")
        User.objects.filter(pk=root_user.pk).update(password="!")
        Identity.objects.create(
            user=root_user, provider="fake", issuer=role_map.issuer, subject="root-sub"
        )
        client = Client()
        role_map.sso_login(
            client,
            {**CLAIMS, "sub": "root-sub", "email": root_user.email, "roles": [], "amr": ["mfa"]},
        )
        assert logged_in_as(client) == root_user.pk
        assert "root" in groups_of(root_user)
        assert AuditEvent.objects.filter(action="sso.groups.sync_held").exists()


# --- which password proves a link ------------------------------------------------------------


def reset_by_mailed_link(email: str, new_password: str) -> None:
    """ "Forgot password?", then the link in the mail, as its reader would."""
    from django.core import mail

    mail.outbox.clear()
    Client().post("/password/reset/", {"email": email})
    link = re.search(r"http://testserver(/password/reset/key/\S+/)", mail.outbox[-1].body)[1]
    reader = Client()
    form_url = reader.get(link)["Location"]
    done = reader.post(form_url, {"password1": new_password, "password2": new_password})
    assert done.status_code == 302


class TestWhichPasswordProves:
    def test_one_chosen_through_a_link_mailed_to_the_address_proves(self, role_map):
        user = UserFactory(email=OWNER)  # an initial password, set by an admin
        reset_by_mailed_link(OWNER, OWN)
        client = Client()
        role_map.sso_login(client, CLAIMS)
        response = client.post("/sso/link/password/", {"password": OWN})
        assert response.status_code == 302 and logged_in_as(client) == user.pk
        assert linked() == [{"provider": "fake", "proof": "password"}]

    def test_changing_an_initial_password_in_a_session_proves_nothing(self, role_map, password):
        """(b), one step further: whoever knows the initial password logs in
        with it and changes it; they know the new one too."""
        UserFactory(email=OWNER)
        squatter = Client()
        login(squatter, OWNER, password)
        changed = squatter.post(
            "/password/change/", {"oldpassword": password, "password1": OWN, "password2": OWN}
        )
        assert changed.status_code == 302
        client = Client()
        role_map.sso_login(client, CLAIMS)
        response = client.post("/sso/link/password/", {"password": OWN})
        assert "cannot show that the account is yours alone" in response.content.decode()
        assert not Identity.objects.exists() and logged_in_as(client) is None
        refused = AuditEvent.objects.get(action="sso.link_refused")
        assert refused.details == {"provider": "fake", "reason": "password_not_own"}

    def test_a_proven_password_keeps_proving_after_its_holder_changes_it(self, role_map):
        user = UserFactory(email=OWNER)
        reset_by_mailed_link(OWNER, OWN)
        holder = Client()
        login(holder, OWNER, OWN)
        new = "yet another own passphrase 11"
        holder.post("/password/change/", {"oldpassword": OWN, "password1": new, "password2": new})
        client = Client()
        role_map.sso_login(client, CLAIMS)
        client.post("/sso/link/password/", {"password": new})
        assert logged_in_as(client) == user.pk

    def test_an_address_changed_since_voids_the_proof(self, role_map):
        """(a) with a password the squatter chose through their own mailbox."""
        squatter = UserFactory(email="mallory@shop.example")
        reset_by_mailed_link(squatter.email, OWN)
        User.objects.filter(pk=squatter.pk).update(email=OWNER)
        client = Client()
        role_map.sso_login(client, CLAIMS)
        page = client.get(LINK_PAGE).content.decode()
        assert 'name="password"' not in page
        response = client.post("/sso/link/password/", {"password": OWN})
        assert "cannot show that the account is yours alone" in response.content.decode()
        assert not Identity.objects.exists()


def test_the_migration_takes_the_proof_from_the_audit_trail():
    """Existing accounts: the address of their latest completed reset by
    mailed link; an address changed since leaves no proof."""
    import importlib

    from django.apps import apps

    from accounts.audit import AuditAction, audit

    reset, moved, initial = (
        UserFactory(email=e) for e in ("r@shop.example", "m@shop.example", "i@shop.example")
    )
    audit(AuditAction.PASSWORD_RESET_COMPLETED, target=reset)
    audit(AuditAction.PASSWORD_RESET_COMPLETED, target=moved)
    audit(AuditAction.PASSWORD_CHANGED, target=initial)  # in a session: no proof
    User.objects.filter(pk=moved.pk).update(email="moved@shop.example")
    User.objects.update(password_proven_for="")
    importlib.import_module("accounts.migrations.0009_user_password_proven_for").from_audit_trail(
        apps, None
    )
    proven = dict(User.objects.values_list("email", "password_proven_for"))
    assert proven["r@shop.example"] == "r@shop.example"
    assert proven["moved@shop.example"] == "m@shop.example"  # no longer this address
    assert proven["i@shop.example"] == ""
