"""Single logout over OpenID Connect, through HTTP against the in-process
provider (tests/oidc_fake.py): the provider's session id kept with each
session, RP-initiated logout, back-channel logout tokens (and every way one
can be wrong) and front-channel logout. The same against the real
oidc-provider in a browser: tests/e2e/test_sso_logout_browser.py."""

import logging
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.hashers import make_password
from django.test import Client

from accounts.login import SESSION_EXTRA
from accounts.models import AuditEvent
from sso import logout as sso_logout
from sso.models import Identity, SsoSession
from tests.conftest import login
from tests.factories import PASSWORD, UserFactory
from tests.oidc_fake import CLIENT_ID, new_key

pytestmark = pytest.mark.django_db

ADA = {"sub": "ada-sub", "sid": "ada-sid-1", "email": "ada@shop.example", "email_verified": True}
BOB = {"sub": "bob-sub", "sid": "bob-sid-1", "email": "bob@shop.example", "email_verified": True}
BACKCHANNEL = "/sso/fake/backchannel-logout/"


@pytest.fixture
def fake(idp, settings):
    idp.reset_behaviour()
    settings.IAM_SSO_PROVIDERS = {"fake": idp.oidc_config()}
    return idp


@pytest.fixture
def people(db):
    # Accounts that only SSO opens: their first SSO login links at once.
    return (
        UserFactory(email="ada@shop.example", password=make_password(None)),
        UserFactory(email="bob@shop.example", password=make_password(None)),
    )


def sso_client(idp, claims) -> Client:
    """A browser logged in through the provider as `claims` says."""
    client = Client()
    start = client.post("/sso/fake/login/")
    assert start.status_code == 302
    done = client.get(idp.authorize(start["Location"], claims))
    assert done.status_code == 302 and done["Location"] == "/", done
    assert logged_in(client)
    return client


def logged_in(client) -> bool:
    response = client.get("/account/")
    return response.status_code == 200


def backchannel(token, client=None):
    return (client or Client()).post(BACKCHANNEL, {"logout_token": token})


class TestSessionsKeepTheProviderSession:
    def test_an_sso_login_lists_its_session_with_sid_and_sub(self, fake, people):
        client = sso_client(fake, ADA)
        row = SsoSession.objects.get()
        assert (row.provider, row.sid, row.sub, row.user) == (
            "fake",
            "ada-sid-1",
            "ada-sub",
            people[0],
        )
        assert row.session_key == client.session.session_key
        extra = client.session[SESSION_EXTRA]
        assert extra["sid"] == "ada-sid-1" and extra["id_token"].count(".") == 2

    def test_a_password_login_lists_none(self, fake, people):
        client = Client()
        people[0].set_password(PASSWORD)
        people[0].save()
        assert login(client, "ada@shop.example", PASSWORD).status_code == 302
        assert logged_in(client)
        assert not SsoSession.objects.exists()


class TestRPInitiatedLogout:
    def _logout(self, client):
        response = client.post("/logout/")
        assert response.status_code == 302
        return response["Location"]

    def test_logout_goes_on_to_the_provider_with_the_id_token_as_hint(self, fake, people):
        client = sso_client(fake, ADA)
        id_token = client.session[SESSION_EXTRA]["id_token"]
        page_url = self._logout(client)
        assert page_url.startswith("/sso/fake/logout/?to=")
        assert id_token not in page_url  # encrypted on our side
        assert not logged_in(client)  # the Back Office session ended at once
        page = client.get(page_url)
        assert page.status_code == 200
        assert "no-store" in page["Cache-Control"]
        html = page.content.decode()
        (url,) = {
            part.split('href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
            for part in html.split("<a ")[1:]
            if fake.issuer in part
        }
        assert f'content="0; url={url.replace("&", "&amp;")}"' in html
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{fake.issuer}/logout"
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        assert query["id_token_hint"] == id_token
        assert query["client_id"] == CLIENT_ID
        assert query["post_logout_redirect_uri"] == "http://testserver/login/"
        # The provider sends the browser back with our state: the login page says so.
        back = client.get(f"/login/?state={query['state']}")
        assert "You have been logged out, also at Fake IdP." in back.content.decode()

    def test_a_state_that_is_not_ours_says_nothing(self, client, fake):
        page = client.get("/login/?state=fake.forged.state").content.decode()
        assert "also at" not in page

    def test_a_tampered_or_old_continuation_link_lands_on_the_login_page(self, fake, people):
        client = sso_client(fake, ADA)
        page_url = self._logout(client)
        assert client.get(page_url[:-4] + "AAAA")["Location"] == "/login/"
        old = sso_logout._fernet().encrypt_at_time(
            f"{fake.issuer}/logout".encode(), int(time.time()) - sso_logout.CONTINUATION_TTL - 5
        )
        assert client.get(f"/sso/fake/logout/?to={old.decode()}")["Location"] == "/login/"

    def test_switched_off_by_the_logout_setting(self, fake, people, settings):
        settings.IAM_SSO_PROVIDERS = {"fake": fake.oidc_config(logout="false")}
        client = sso_client(fake, ADA)
        assert self._logout(client) == "/login/"
        assert not logged_in(client)

    def test_a_provider_without_end_session_endpoint(self, fake, people):
        fake.end_session = False
        client = sso_client(fake, ADA)
        assert self._logout(client) == "/login/"

    def test_a_password_session_logs_out_here_only(self, fake, people):
        client = Client()
        people[0].set_password(PASSWORD)
        people[0].save()
        login(client, "ada@shop.example", PASSWORD)
        assert self._logout(client) == "/login/"

    def test_logout_stays_a_post_with_csrf(self, fake, people):
        client = sso_client(fake, ADA)
        client.handler.enforce_csrf_checks = True
        assert client.post("/logout/").status_code == 403
        assert client.get("/logout/").status_code == 200  # the confirmation page
        assert logged_in(client)

    def test_a_wrong_logout_setting_is_a_start_up_error(self, fake, settings):
        from django.core.management import call_command
        from django.core.management.base import SystemCheckError

        settings.IAM_SSO_PROVIDERS = {"fake": fake.oidc_config(logout="perhaps")}
        with pytest.raises(SystemCheckError, match="IAM_SSO_FAKE_LOGOUT must be true or false"):
            call_command("check")


class TestBackchannelLogout:
    def test_a_good_token_ends_that_session_only(self, fake, people):
        ada, ada_elsewhere, bob = (
            sso_client(fake, ADA),
            sso_client(fake, {**ADA, "sid": "ada-sid-2"}),
            sso_client(fake, BOB),
        )
        response = backchannel(fake.logout_token(sid="ada-sid-1", sub="ada-sub"))
        assert response.status_code == 200
        assert response["Cache-Control"] == "no-store"
        assert not logged_in(ada)
        assert logged_in(ada_elsewhere) and logged_in(bob)
        event = AuditEvent.objects.filter(action="sso.backchannel_logout").get()
        assert event.details == {"provider": "fake", "by_sid": True, "ended": 1}
        ended = AuditEvent.objects.filter(action="session.ended").get()
        assert ended.target_id == str(people[0].pk)
        assert ended.details == {"reason": "sso.backchannel_logout", "ended": 1}
        assert ended.actor_label == "identity provider fake"

    def test_a_token_with_sub_only_ends_every_session_of_that_subject(self, fake, people):
        ada, ada_elsewhere, bob = (
            sso_client(fake, ADA),
            sso_client(fake, {**ADA, "sid": "ada-sid-2"}),
            sso_client(fake, BOB),
        )
        assert backchannel(fake.logout_token(sub="ada-sub")).status_code == 200
        assert not logged_in(ada) and not logged_in(ada_elsewhere)
        assert logged_in(bob)
        assert not SsoSession.objects.filter(sub="ada-sub").exists()

    def test_no_csrf_token_and_no_session_needed(self, fake, people):
        ada = sso_client(fake, ADA)
        stranger = Client(enforce_csrf_checks=True)
        assert backchannel(fake.logout_token(sid="ada-sid-1"), stranger).status_code == 200
        assert not logged_in(ada)

    def test_no_matching_session_is_still_a_success(self, fake, people):
        assert backchannel(fake.logout_token(sid="nobody")).status_code == 200

    @pytest.mark.parametrize(
        "why, reason, make",
        [
            (
                "forged signature",
                "bad_signature",
                lambda f: f.logout_token(sid="ada-sid-1", key=_forger(f)),
            ),
            (
                "wrong audience",
                "bad_claim:aud",
                lambda f: f.logout_token(sid="ada-sid-1", aud="someone-else"),
            ),
            (
                "wrong issuer",
                "bad_claim:iss",
                lambda f: f.logout_token(sid="ada-sid-1", iss="https://evil.example"),
            ),
            (
                "missing events",
                "bad_claim:events",
                lambda f: f.logout_token(sid="ada-sid-1", drop=["events"]),
            ),
            (
                "other event",
                "bad_claim:events",
                lambda f: f.logout_token(sid="ada-sid-1", events={"x": {}}),
            ),
            (
                "nonce present",
                "bad_claim:nonce",
                lambda f: f.logout_token(sid="ada-sid-1", nonce="n"),
            ),
            ("neither sid nor sub", "bad_claim:sid", lambda f: f.logout_token()),
            ("no jti", "bad_claim:jti", lambda f: f.logout_token(sid="ada-sid-1", drop=["jti"])),
            (
                "old iat",
                "bad_claim:iat",
                lambda f: f.logout_token(sid="ada-sid-1", iat=int(time.time()) - 3600),
            ),
            (
                "expired",
                "bad_claim:exp",
                lambda f: f.logout_token(sid="ada-sid-1", exp=int(time.time()) - 600),
            ),
            ("not a token", "no_token", lambda f: "not-a-token"),
            (
                "unsigned",
                "bad_alg",
                lambda f: _unsigned({"iss": f.issuer, "aud": CLIENT_ID, "sid": "ada-sid-1"}),
            ),
            ("too large", "too_large", lambda f: f.logout_token(sid="ada-sid-1", pad="x" * 20_000)),
        ],
    )
    def test_a_bad_token_is_refused_and_ends_nothing(self, fake, people, why, reason, make, caplog):
        ada = sso_client(fake, ADA)
        token = make(fake)
        with caplog.at_level(logging.DEBUG):
            response = backchannel(token)
        assert response.status_code == 400, why
        assert response.json()["error"] == "invalid_request"
        assert response["Cache-Control"] == "no-store"
        assert logged_in(ada)
        refused = AuditEvent.objects.filter(action="sso.logout_token_refused").get()
        assert refused.details["reason"].startswith(reason)
        assert token not in str(refused.details)
        assert all(token not in r.getMessage() for r in caplog.records)

    def test_a_replayed_token_is_refused(self, fake, people):
        token = fake.logout_token(sid="ada-sid-1")
        assert backchannel(token).status_code == 200
        ada = sso_client(fake, ADA)
        response = backchannel(token)
        assert response.status_code == 400
        assert "used already" in response.json()["error_description"]
        assert logged_in(ada)

    def test_post_only_and_unknown_provider(self, fake):
        assert Client().get(BACKCHANNEL).status_code == 405
        assert Client().post("/sso/nope/backchannel-logout/", {}).status_code == 404


class TestFrontchannelLogoutIsOptIn:
    """Anyone who knows a sid could end that session with a cross-site GET
    (an image on any page): the front channel is accepted only from a
    provider the operator switched it on for (IAM_SSO_<ID>_FRONTCHANNEL)."""

    def test_off_by_default_the_endpoint_is_a_404_and_ends_nothing(self, fake, people):
        ada = sso_client(fake, ADA)
        for query in ({"iss": fake.issuer, "sid": "ada-sid-1"}, {"sid": "ada-sid-1"}):
            response = Client().get("/sso/fake/frontchannel-logout/", query)
            assert response.status_code == 404
        assert logged_in(ada)
        assert SsoSession.objects.filter(sid="ada-sid-1").exists()
        assert not AuditEvent.objects.filter(action="sso.frontchannel_logout").exists()

    def test_read_once_from_the_environment_default_false(self, monkeypatch):
        import environ

        from iam import settings as iam_settings

        monkeypatch.setattr(iam_settings, "env", environ.Env())
        monkeypatch.delenv("IAM_SSO_FAKE_FRONTCHANNEL", raising=False)
        assert iam_settings._sso_provider("fake")["frontchannel"] == "false"
        monkeypatch.setenv("IAM_SSO_FAKE_FRONTCHANNEL", "true")
        assert iam_settings._sso_provider("fake")["frontchannel"] == "true"

    def test_a_value_that_is_no_boolean_is_a_configuration_error(self, fake):
        from sso.providers.oidc import OIDCProvider

        provider = OIDCProvider(fake.oidc_config(frontchannel="maybe"))
        assert "IAM_SSO_FAKE_FRONTCHANNEL must be true or false" in provider.config_errors()
        assert provider.frontchannel is False
        assert OIDCProvider(fake.oidc_config(frontchannel="on")).frontchannel is True

    def test_a_nul_byte_is_a_400_page_and_ends_nothing(self, fake, people, settings):
        settings.IAM_SSO_PROVIDERS = {"fake": fake.oidc_config(frontchannel="true")}
        ada = sso_client(fake, ADA)
        anonymous = Client()
        anonymous.raise_request_exception = False
        for query in ({"sid": "\x00"}, {"sid": "ada-sid-1\x00"}, {"iss": "\x00", "sid": "x"}):
            response = anonymous.get("/sso/fake/frontchannel-logout/", query)
            assert response.status_code == 400, response.status_code
        assert logged_in(ada)


class TestFrontchannelLogout:
    @pytest.fixture(autouse=True)
    def _switched_on(self, fake, settings):
        settings.IAM_SSO_PROVIDERS = {"fake": fake.oidc_config(frontchannel="true")}

    def test_iss_and_sid_end_that_session_in_a_frame_the_provider_may_draw(self, fake, people):
        ada, bob = sso_client(fake, ADA), sso_client(fake, BOB)
        response = Client().get(
            "/sso/fake/frontchannel-logout/", {"iss": fake.issuer, "sid": "ada-sid-1"}
        )
        assert response.status_code == 200
        assert "no-store" in response["Cache-Control"]
        assert "X-Frame-Options" not in response
        assert f"frame-ancestors {fake.base}" in response["Content-Security-Policy"]
        assert not logged_in(ada) and logged_in(bob)
        assert AuditEvent.objects.filter(action="sso.frontchannel_logout").count() == 1
        # Every other page still refuses to be framed.
        other = Client().get("/login/")
        assert other["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in other["Content-Security-Policy"]

    def test_sid_alone_as_entra_id_sends_it(self, fake, people):
        ada, bob = sso_client(fake, ADA), sso_client(fake, BOB)
        response = Client().get("/sso/fake/frontchannel-logout/", {"sid": "ada-sid-1"})
        assert response.status_code == 200
        assert not logged_in(ada) and logged_in(bob)

    def test_nothing_named_ends_nothing(self, fake, people):
        ada = sso_client(fake, ADA)
        for query in ({}, {"iss": fake.issuer}, {"iss": fake.issuer, "sid": "other"}):
            assert Client().get("/sso/fake/frontchannel-logout/", query).status_code == 200
        assert logged_in(ada)

    def test_another_issuer_ends_nothing(self, fake, people):
        ada = sso_client(fake, ADA)
        response = Client().get(
            "/sso/fake/frontchannel-logout/", {"iss": "https://evil.example", "sid": "ada-sid-1"}
        )
        assert response.status_code == 200
        assert logged_in(ada)
        assert not AuditEvent.objects.filter(action="sso.frontchannel_logout").exists()


def _forger(idp):
    """A key of the attacker's, with the id of the provider's own key."""
    return new_key(idp.signing_key.kid)


def _unsigned(claims: dict) -> str:
    import base64
    import json

    def part(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims)}."


class TestReauthentication:
    def test_a_fresh_login_at_the_provider_brings_its_new_session_id(self, fake, settings):
        """The provider may start a new session of its own at a
        re-authentication: its logout then names the new sid."""
        from django.contrib.auth.hashers import make_password

        from tests.conftest import age_authentication

        settings.IAM_MFA_REQUIRED_GROUPS = []
        UserFactory(email="ada@shop.example", password=make_password(None), groups=["root"])
        target = UserFactory(email="target@shop.example")
        client = sso_client(fake, ADA)
        age_authentication(client.session)
        asked = client.post(f"/users/{target.pk}/block/")
        assert asked["Location"].startswith("/sso/fake/reauthenticate/")
        to_provider = client.post("/sso/fake/reauthenticate/", {"next": f"/users/{target.pk}/"})
        done = client.get(fake.authorize(to_provider["Location"], {**ADA, "sid": "ada-sid-new"}))
        assert done.status_code == 302
        assert SsoSession.objects.get().sid == "ada-sid-new"
        assert client.session[SESSION_EXTRA]["sid"] == "ada-sid-new"
        assert backchannel(fake.logout_token(sid="ada-sid-1")).status_code == 200
        assert logged_in(client)
        assert backchannel(fake.logout_token(sid="ada-sid-new")).status_code == 200
        assert not logged_in(client)


class TestWithOurMFA:
    def test_the_session_is_listed_once_the_code_is_given(self, fake, people):
        """A user with an authenticator logs in through the provider (no
        `amr`): the session exists, and is listed, only after our MFA step."""
        from tests.support.mfa import activate_totp, totp

        ada = people[0]
        ada.set_password(PASSWORD)
        ada.save()
        setup = Client()
        login(setup, ada.email, PASSWORD)
        secret = activate_totp(setup)
        # Linked at an earlier login (a first login onto an account with a
        # password waits for proof: tests/test_sso_linking.py).
        Identity.objects.create(user=ada, provider="fake", issuer=fake.issuer, subject=ADA["sub"])
        client = Client()
        start = client.post("/sso/fake/login/")
        mid = client.get(fake.authorize(start["Location"], ADA))
        assert mid["Location"] == "/2fa/authenticate/"
        assert not SsoSession.objects.exists()
        assert client.post("/2fa/authenticate/", {"code": totp(secret, step=-1)}).status_code == 302
        assert logged_in(client)
        row = SsoSession.objects.get()
        assert row.session_key == client.session.session_key and row.sid == "ada-sid-1"
        assert backchannel(fake.logout_token(sid="ada-sid-1")).status_code == 200
        assert not logged_in(client) and logged_in(setup)
