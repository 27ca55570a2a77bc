"""Single sign-on through HTTP against an in-process OpenID provider."""

import io
import logging
import threading
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.contrib.auth.hashers import make_password
from django.core import mail
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from django.test import Client

from accounts.audit import Actor
from accounts.login import SESSION_AUTHENTICATED
from accounts.models import AuditEvent, Group, Membership, User
from sso.models import Identity
from tests import conftest
from tests.conftest import login
from tests.factories import PASSWORD, GroupFactory, UserFactory
from tests.oidc_fake import TENANT, new_key
from tests.support.sso import ADA, configure, last_failure_reason, sso_login, start

pytestmark = pytest.mark.django_db


def failure(response, client) -> str:
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert "_auth_user_id" not in client.session
    page = client.get("/login/")
    return page.content.decode()


class TestLoginPage:
    def test_one_post_button_per_provider(self, client, fake, settings):
        settings.IAM_SSO_PROVIDERS = {
            "fake": fake.oidc_config(name="Okta"),
            "azure": fake.azure_config(name="Microsoft"),
        }
        html = client.get("/login/").content.decode()
        assert 'action="/sso/fake/login/"' in html and "Log in with Okta" in html
        assert 'action="/sso/azure/login/"' in html and "Log in with Microsoft" in html

    def test_login_is_post_only_and_unknown_provider_is_404(self, client, fake):
        assert client.get("/sso/fake/login/").status_code == 405
        assert client.post("/sso/nope/login/").status_code == 404
        assert client.get("/sso/nope/callback/?code=x&state=y").status_code == 404

    def test_authorization_request_uses_pkce_state_nonce(self, client, fake):
        url = start(client)
        assert url.startswith(fake.issuer + "/authorize?")
        for part in (
            "response_type=code",
            "client_id=backoffice",
            "code_challenge_method=S256",
            "state=",
            "nonce=",
            "scope=openid+email+profile",
            "redirect_uri=http%3A%2F%2Ftestserver%2Fsso%2Ffake%2Fcallback%2F",
        ):
            assert part in url


class TestPKCE:
    def test_s256_is_sent_by_default_even_when_discovery_does_not_list_it(self, client, fake):
        UserFactory(email="ada@shop.example", password=make_password(None))
        assert sso_login(client, fake, ADA)["Location"] == "/"
        assert fake.last_authorization["code_challenge_method"] == "S256"
        assert fake.last_authorization["code_challenge"]
        assert fake.last_token_form["code_verifier"]

    def test_pkce_false_for_a_provider_that_refuses_it(self, client, fake, settings):
        UserFactory(email="ada@shop.example", password=make_password(None))
        fake.pkce = "refused"
        configure(settings, fake, pkce="false")
        assert sso_login(client, fake, ADA)["Location"] == "/"
        assert "code_challenge" not in fake.last_authorization
        assert "code_challenge_method" not in fake.last_authorization
        assert "code_verifier" not in fake.last_token_form

    @pytest.mark.parametrize("behaviour,setting", [("refused", "true"), ("required", "off")])
    def test_invalid_request_points_at_pkce_and_redirect_uri(
        self, client, fake, settings, behaviour, setting
    ):
        UserFactory(email="ada@shop.example", password=make_password(None))
        fake.pkce = behaviour
        configure(settings, fake, pkce=setting)
        html = failure(sso_login(client, fake, ADA), client)
        assert "refused the sign-in request" in html
        assert "IAM_SSO_FAKE_PKCE" in html and "redirect URI" in html
        assert last_failure_reason() == "idp_error:invalid_request:check_pkce_and_redirect_uri"

    def test_invalid_request_at_the_token_endpoint(self, client, fake):
        UserFactory(email="ada@shop.example", password=make_password(None))
        fake.token_status, fake.token_error = 400, "invalid_request"
        html = failure(sso_login(client, fake, ADA), client)
        assert "IAM_SSO_FAKE_PKCE" in html and "redirect URI" in html
        assert last_failure_reason() == "token_error:invalid_request:check_pkce_and_redirect_uri"

    def test_a_misspelt_pkce_setting_fails_the_check(self, fake, settings):
        configure(settings, fake, pkce="maybe")
        with pytest.raises(SystemCheckError, match="IAM_SSO_FAKE_PKCE must be true or false"):
            call_command("check")


class TestPreRegistered:
    def test_existing_account_logs_in_and_is_linked(self, client, fake):
        user = UserFactory(email="ada@shop.example", password=make_password(None))
        response = sso_login(client, fake, ADA, next="/users/")
        assert response.status_code == 302 and response["Location"] == "/users/"
        assert int(client.session["_auth_user_id"]) == user.pk
        identity = Identity.objects.get(user=user)
        assert (identity.provider, identity.issuer, identity.subject) == (
            "fake",
            fake.issuer,
            "ada-sub-1",
        )
        event = AuditEvent.objects.filter(action="login.succeeded").latest("id")
        assert event.details == {"method": "sso:fake"}
        assert AuditEvent.objects.filter(action="sso.linked", target_id=user.pk).exists()
        # Listed under the user, so blocking them ends this session too.
        from allauth.usersessions.models import UserSession

        assert UserSession.objects.filter(session_key=client.session.session_key).exists()

    def test_no_account_means_no_login_and_no_account(self, client, fake):
        html = failure(sso_login(client, fake, ADA), client)
        assert "Log in with Fake IdP failed" in html and "Ask an administrator" in html
        assert not User.objects.filter(email="ada@shop.example").exists()
        assert last_failure_reason() == "no_account"

    def test_link_holds_whatever_the_email_later_says(self, client, fake):
        user = UserFactory(email="ada@shop.example", password=make_password(None))
        sso_login(client, fake, ADA)
        other = UserFactory(email="renamed@shop.example")
        client.post("/logout/")
        sso_login(client, fake, {**ADA, "email": "renamed@shop.example"})
        assert int(client.session["_auth_user_id"]) == user.pk != other.pk

    def test_another_subject_cannot_take_a_linked_account(self, client, fake):
        UserFactory(email="ada@shop.example", password=make_password(None))
        sso_login(client, fake, ADA)
        intruder = Client()
        html = failure(sso_login(intruder, fake, {**ADA, "sub": "someone-else"}), intruder)
        assert "linked to another Fake IdP identity" in html

    def test_unverified_email_cannot_match_an_account(self, client, fake):
        UserFactory(email="ada@shop.example", password=make_password(None))
        html = failure(sso_login(client, fake, {**ADA, "email_verified": False}), client)
        assert "does not vouch for your email" in html
        assert not Identity.objects.exists()

    @pytest.mark.parametrize("verified", [True, "true"])
    def test_email_verified_true_matches(self, client, fake, verified):
        user = UserFactory(email="ada@shop.example", password=make_password(None))
        assert sso_login(client, fake, {**ADA, "email_verified": verified})["Location"] == "/"
        assert int(client.session["_auth_user_id"]) == user.pk

    @pytest.mark.parametrize("verified", ["false", "True", "yes", 1, None, ["true"], {}])
    def test_email_verified_anything_but_true_never_matches(self, client, fake, verified):
        UserFactory(email="ada@shop.example", password=make_password(None))
        html = failure(sso_login(client, fake, {**ADA, "email_verified": verified}), client)
        assert "does not vouch for your email" in html
        assert last_failure_reason() == "email_not_verified:email_verified_not_true"
        assert not Identity.objects.exists()

    def test_missing_email_verified_never_matches(self, client, fake, settings):
        UserFactory(email="ada@shop.example", password=make_password(None))
        unproven = {k: v for k, v in ADA.items() if k != "email_verified"}
        assert "does not vouch" in failure(sso_login(client, fake, unproven), client)
        configure(settings, fake, strategy="auto-provision")
        other = Client()
        failure(sso_login(other, fake, {**unproven, "email": "new@shop.example"}), other)
        assert not User.objects.filter(email="new@shop.example").exists()
        assert not Identity.objects.exists()

    def test_email_verified_may_come_from_userinfo(self, client, fake):
        """A provider that keeps email_verified out of the ID token still
        vouches through userinfo (the ID token wins where both speak)."""
        user = UserFactory(email="ada@shop.example", password=make_password(None))
        unproven = {k: v for k, v in ADA.items() if k != "email_verified"}
        fake.userinfo_claims = {"sub": "ada-sub-1", "email_verified": True}
        assert sso_login(client, fake, unproven)["Location"] == "/"
        assert int(client.session["_auth_user_id"]) == user.pk
        other = Client()
        fake.userinfo_claims = {"sub": "ada-sub-2", "email_verified": True}
        denied = {**ADA, "sub": "ada-sub-2", "email_verified": False}
        assert "does not vouch" in failure(sso_login(other, fake, denied), other)

    def test_blocked_account_is_refused(self, client, fake):
        UserFactory(email="ada@shop.example", status=User.Status.BLOCKED)
        html = failure(sso_login(client, fake, ADA), client)
        assert "your account is blocked" in html
        assert last_failure_reason() == "blocked"


class TestAutoProvision:
    def test_first_login_creates_account_in_default_group(self, client, fake, settings):
        configure(settings, fake, strategy="auto-provision")
        response = sso_login(client, fake, ADA)
        assert response.status_code == 302 and response["Location"] == "/"
        user = User.objects.get(email="ada@shop.example")
        assert (user.first_name, user.last_name, user.status) == ("Ada", "Lovelace", "active")
        assert not user.has_usable_password()
        assert [g.name for g in user.groups.all()] == ["backoffice-users"]
        assert AuditEvent.objects.get(action="user.created").details["via"] == "sso:fake"
        assert "Ada Lovelace" in client.get("/").content.decode()

    @pytest.mark.parametrize(
        "claims,names",
        [
            ({"name": "Erin Evans"}, ("Erin", "Evans")),
            ({"name": "Ludwig van Beethoven"}, ("Ludwig", "van Beethoven")),
            ({"name": "Cher"}, ("Cher", "-")),
            ({"given_name": "Erin", "name": "Erin Evans"}, ("Erin", "Evans")),
            ({"given_name": "Erin", "family_name": "Evans", "name": "E. E."}, ("Erin", "Evans")),
            ({"name": "  "}, ("erin", "-")),
            ({}, ("erin", "-")),
        ],
    )
    def test_names_from_given_family_else_name_else_email(
        self, client, fake, settings, claims, names
    ):
        configure(settings, fake, strategy="auto-provision")
        base = {"sub": "erin-sub", "email": "erin@shop.example", "email_verified": True}
        assert sso_login(client, fake, {**base, **claims})["Location"] == "/"
        user = User.objects.get(email="erin@shop.example")
        assert (user.first_name, user.last_name) == names

    def test_hostile_claims_are_cleaned_not_500(self, client, fake, settings):
        configure(settings, fake, strategy="auto-provision")
        claims = {**ADA, "given_name": "A\x00d\na\x1b", "family_name": "x" * 500}
        assert sso_login(client, fake, claims)["Location"] == "/"
        user = User.objects.get(email="ada@shop.example")
        assert user.first_name == "Ada" and len(user.last_name) == 150
        other = Client()
        bad = {**ADA, "sub": "nul\x00sub", "email": "nul\x00@shop.example"}
        failure(sso_login(other, fake, bad), other)
        escape = Client()
        failure(
            sso_login(escape, fake, {**ADA, "sub": "e", "email": "a\x1b[2J@shop.example"}), escape
        )
        assert last_failure_reason() == "no_email"

    def test_per_provider_strategy_overrides_global(self, client, fake, settings):
        settings.IAM_SSO_STRATEGY = "auto-provision"
        configure(settings, fake, strategy="pre-registered")
        failure(sso_login(client, fake, ADA), client)
        assert not User.objects.exists() or not User.objects.filter(email=ADA["email"]).exists()

    def test_blocked_provisioned_account_is_refused_next_time(self, client, fake, settings):
        configure(settings, fake, strategy="auto-provision")
        sso_login(client, fake, ADA)
        User.objects.filter(email="ada@shop.example").update(status="blocked")
        again = Client()
        assert "blocked" in failure(sso_login(again, fake, ADA), again)

    def test_sso_only_account_gets_no_password_reset_mail(self, client, fake, settings):
        configure(settings, fake, strategy="auto-provision")
        sso_login(client, fake, ADA)
        response = Client().post("/password/reset/", {"email": "ada@shop.example"})
        assert response.status_code == 302 and response["Location"] == "/password/reset/done/"
        assert mail.outbox == []
        assert AuditEvent.objects.filter(action="password.reset.refused").exists()


class TestTokenValidation:
    @pytest.mark.parametrize(
        "knob,value,reason",
        [
            ("claim_overrides", {"iss": "http://127.0.0.1:1/evil"}, "bad_claim:iss"),
            ("claim_overrides", {"aud": "someone-else"}, "bad_claim:aud"),
            ("claim_overrides", {"aud": ["backoffice", "other"], "azp": "other"}, "bad_claim:azp"),
            ("claim_overrides", {"exp": int(time.time()) - 3600}, "bad_claim:exp"),
            ("claim_overrides", {"iat": int(time.time()) - 3600}, "bad_claim:iat"),
            ("claim_overrides", {"nonce": "replayed-nonce"}, "bad_claim:nonce"),
            ("drop_claims", {"sub"}, "bad_claim:sub"),
            ("drop_claims", {"nonce"}, "bad_claim:nonce"),
            ("header_overrides", {"kid": "no-such-key"}, "bad_signature:InvalidKeyIdError"),
        ],
    )
    def test_bad_tokens_never_log_in(self, client, fake, knob, value, reason):
        UserFactory(email="ada@shop.example", password=make_password(None))
        setattr(fake, knob, value)
        html = failure(sso_login(client, fake, ADA), client)
        assert "Log in with Fake IdP failed" in html
        assert last_failure_reason() == reason

    def test_foreign_signature(self, client, fake):
        UserFactory(email="ada@shop.example", password=make_password(None))
        fake.foreign_key = new_key("key-1")  # same kid, other key
        html = failure(sso_login(client, fake, ADA), client)
        assert "signature is not valid" in html

    @pytest.mark.parametrize(
        "header", [{"alg": "none"}, {"alg": "HS256", "kid": "key-1"}, {"alg": "RS512"}]
    )
    def test_unpublished_algorithms_are_refused(self, client, fake, header):
        import base64
        import json

        def b64(data):
            return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

        UserFactory(email="ada@shop.example", password=make_password(None))
        now = int(time.time())
        fake.raw_id_token = (
            b64(header)
            + "."
            + b64({**ADA, "iss": fake.issuer, "aud": "backoffice", "iat": now, "exp": now + 60})
            + ".c2lnbmF0dXJl"
        )
        failure(sso_login(client, fake, ADA), client)
        assert last_failure_reason() == "bad_alg"

    def test_state_is_single_use_and_bound_to_the_browser(self, client, fake):
        UserFactory(email="ada@shop.example", password=make_password(None))
        callback = fake.authorize(start(client), ADA)
        elsewhere = Client()
        assert "not valid here" in failure(elsewhere.get(callback), elsewhere)
        assert client.get(callback)["Location"] == "/"
        client.post("/logout/")
        assert "not valid here" in failure(client.get(callback), client)
        forged = Client()
        assert "not valid here" in failure(
            forged.get("/sso/fake/callback/?code=abc&state=forged"), forged
        )

    def test_userinfo_fills_missing_email_and_must_match_sub(self, client, fake):
        UserFactory(email="ada@shop.example", password=make_password(None))
        no_email = {k: v for k, v in ADA.items() if k != "email"}
        fake.userinfo_claims = {"sub": "ada-sub-1", "email": "ada@shop.example"}
        assert sso_login(client, fake, no_email)["Location"] == "/"
        other = Client()
        fake.userinfo_claims = {"sub": "mallory", "email": "ada@shop.example"}
        assert "belongs to someone else" in failure(
            sso_login(other, fake, {**no_email, "sub": "new-sub"}), other
        )


class TestProviderTrouble:
    def test_user_cancels_at_the_provider(self, client, fake):
        url = start(client)
        state = url.split("state=")[1].split("&")[0]
        response = client.get(f"/sso/fake/callback/?error=access_denied&state={state}")
        assert "sign-in was cancelled" in failure(response, client)

    def test_provider_values_cannot_forge_log_lines(self, client, fake, caplog):
        """Anyone can call the callback with their own error and description:
        neither reaches a log line or the audit trail with a line break or any
        other control character."""
        url = start(client)
        state = url.split("state=")[1].split("&")[0]
        forged = "x\n2026-01-01 00:00:00,000 WARNING iam.security login throttled"
        query = urlencode(
            {"state": state, "error": forged, "error_description": "a\r\nb\x1b[31m\u2028c\x85"}
        )
        caplog.set_level(logging.INFO)
        html = failure(client.get(f"/sso/fake/callback/?{query}"), client)
        assert "Log in with Fake IdP failed: the provider reported an error" in html
        assert caplog.records
        for record in caplog.records:
            assert record.getMessage().isprintable(), record.getMessage()
        assert len(caplog.text.splitlines()) == len(caplog.records)
        event = AuditEvent.objects.filter(action="sso.failed").latest("id")
        assert event.details["reason"].isprintable() and event.details["reason"].startswith(
            "idp_error:x?2026"
        )
        assert event.details["provider_said"] == "a??b?[31m?c?"

    def test_token_endpoint_error_values_are_cleaned_too(self, client, fake, caplog):
        UserFactory(email="ada@shop.example", password=make_password(None))
        fake.token_status, fake.token_error = 400, "bad\r\nWARNING forged"
        failure(sso_login(client, fake, ADA), client)
        assert last_failure_reason() == "token_error:bad??WARNING forged"
        assert all(r.getMessage().isprintable() for r in caplog.records)

    def test_callback_naming_another_issuer_is_refused(self, client, fake):
        UserFactory(email="ada@shop.example", password=make_password(None))
        callback = fake.authorize(start(client), ADA)
        response = client.get(callback + "&iss=https%3A%2F%2Fevil.example")
        assert "came from another provider" in failure(response, client)

    def test_token_endpoint_error(self, client, fake):
        fake.token_status = 500
        html = failure(sso_login(client, fake, ADA), client)
        assert "refused the sign-in code" in html

    def test_provider_down_at_discovery(self, client, fake):
        fake.discovery_status = 503
        response = client.post("/sso/fake/login/")
        html = failure(response, client)
        assert "Log in with Fake IdP failed: the provider answered with an error" in html

    def test_provider_too_slow(self, client, fake, settings):
        settings.IAM_SSO_HTTP_TIMEOUT = 0.3
        fake.delay = 1.0
        response = client.post("/sso/fake/login/")
        html = failure(response, client)
        assert "Log in with Fake IdP failed: the provider did not answer in time" in html
        assert last_failure_reason() == "idp_timeout"

    @pytest.mark.django_db(transaction=True)
    def test_hanging_provider_holds_no_more_than_its_slots(self, fake, settings):
        """With one slot, a second SSO login while the first waits on a hanging
        provider is told to try again at once, instead of waiting too."""
        settings.IAM_SSO_MAX_CONCURRENT_CALLS = 1
        settings.IAM_SSO_HTTP_TIMEOUT = 5
        fake.delay = 3.0
        first = threading.Thread(target=Client().post, args=("/sso/fake/login/",))
        first.start()
        time.sleep(0.3)
        second, began = Client(), time.monotonic()
        response = second.post("/sso/fake/login/")
        waited = time.monotonic() - began
        first.join()
        html = failure(response, second)
        assert "Log in with Fake IdP failed: the provider is slow to answer right now" in html
        assert 0.2 < waited < 1.0
        assert last_failure_reason() == "idp_busy"
        fake.delay = 0
        assert start(Client()).startswith(fake.issuer)  # the slot is free again

    def test_provider_unreachable(self, client, settings, fake):
        configure(settings, fake, issuer="http://127.0.0.1:9/realm")
        response = client.post("/sso/fake/login/")
        html = failure(response, client)
        assert "Log in with Fake IdP failed: the provider could not be reached" in html
        assert last_failure_reason() == "idp_unreachable"

    def test_http_endpoint_off_loopback_is_refused(self, client, settings, fake):
        configure(settings, fake, issuer="http://idp.example.com/realm")
        assert "must be an https URL" in failure(client.post("/sso/fake/login/"), client)
        assert fake.hits.total() == 0


class TestCachingAndKeys:
    def test_one_outbound_request_after_warm_up(self, client, fake):
        UserFactory(email="ada@shop.example", password=make_password(None))
        sso_login(client, fake, ADA)
        fake.hits.clear()
        client.post("/logout/")
        assert sso_login(client, fake, ADA)["Location"] == "/"
        assert dict(fake.hits) == {"/realm/token": 1}

    def test_key_rotation_refetches_keys_once(self, client, fake):
        UserFactory(email="ada@shop.example", password=make_password(None))
        sso_login(client, fake, ADA)
        fake.rotate_keys()
        fake.hits.clear()
        client.post("/logout/")
        assert sso_login(client, fake, ADA)["Location"] == "/"
        assert fake.hits["/realm/jwks"] == 1

    def test_unknown_key_ids_do_not_hammer_the_provider(self, client, fake):
        UserFactory(email="ada@shop.example", password=make_password(None))
        sso_login(client, fake, ADA)
        fake.foreign_key = new_key("unknown-kid")
        fake.hits.clear()
        pages = []
        for _ in range(3):
            browser = Client()
            pages.append(failure(sso_login(browser, fake, ADA), browser))
        assert fake.hits["/realm/jwks"] == 1
        # The first refetch found no such key: the token is not the provider's.
        assert "signature is not valid" in pages[0]
        # After that, we cannot know yet: say so rather than "not valid".
        for html in pages[1:]:
            assert "signing keys are being refreshed. Try again in a minute" in html
            assert "signature" not in html
        assert last_failure_reason() == "jwks_refresh_pending"

    def test_rotation_soon_after_a_refetch_asks_to_retry_then_works(self, client, fake):
        UserFactory(email="ada@shop.example", password=make_password(None))
        sso_login(client, fake, ADA)
        fake.rotate_keys()  # a first rotation: refetched at once
        client.post("/logout/")
        assert sso_login(client, fake, ADA)["Location"] == "/"
        fake.rotate_keys()  # a second one within the minute
        client.post("/logout/")
        html = failure(sso_login(client, fake, ADA), client)
        assert "Log in with Fake IdP failed: the provider&#x27;s signing keys are being" in html
        cache.delete("sso:jwks-refetch:fake")  # as if the minute had passed
        assert sso_login(client, fake, ADA)["Location"] == "/"


class TestRoleMapping:
    def test_mapped_groups_follow_the_roles_hand_given_ones_stay(self, client, fake, settings):
        support = GroupFactory(name="support")
        GroupFactory(name="catalog")
        configure(settings, fake, role_map='{"admin": ["root"], "help": ["support", "catalog"]}')
        user = UserFactory(
            email="ada@shop.example", groups=[support], password=make_password(None)
        )  # support by hand
        UserFactory(groups=["root"])  # Ada is not the only one who can manage access
        sso_login(client, fake, {**ADA, "roles": ["admin", "help"]})
        sources = dict(Membership.objects.filter(user=user).values_list("group__name", "source"))
        assert sources == {"support": "manual", "root": "sso:fake", "catalog": "sso:fake"}
        assert client.get("/groups/").status_code == 200  # root applies at once
        client.post("/logout/")
        sso_login(client, fake, {**ADA, "roles": []})
        sources = dict(Membership.objects.filter(user=user).values_list("group__name", "source"))
        assert sources == {"support": "manual"}
        assert client.get("/groups/").status_code == 403
        synced = AuditEvent.objects.filter(action="sso.groups.synced").latest("id")
        assert synced.details["removed"] == ["catalog", "root"]

    @pytest.mark.parametrize(
        "roles,groups",
        [
            ("admin", {"root"}),
            ("admin help", {"root", "support"}),
            ("admin,help", {"root", "support"}),
            (" admin ,  help ", {"root", "support"}),
            (["admin", "help"], {"root", "support"}),
            ("", set()),
            ({"admin": True}, set()),
            (7, set()),
        ],
    )
    def test_role_claim_shapes(self, client, fake, settings, roles, groups):
        GroupFactory(name="support")
        configure(settings, fake, role_map='{"admin": ["root"], "help": ["support"]}')
        user = UserFactory(email="ada@shop.example", password=make_password(None))
        assert sso_login(client, fake, {**ADA, "roles": roles})["Location"] == "/"
        assert set(user.groups.values_list("name", flat=True)) == groups


class TestAzure:
    def _settings(self, settings, fake, **extra):
        settings.IAM_SSO_PROVIDERS = {"azure": fake.azure_config(**extra)}

    def _claims(self, **extra):
        claims = {
            "sub": "pairwise-sub",
            "oid": "oid-123",
            "tid": TENANT,
            "preferred_username": "Ada@Shop.Example",
            "given_name": "Ada",
            "family_name": "Lovelace",
        }
        claims.update(extra)
        return claims

    def test_multi_tenant_login_with_upn_fallback(self, client, fake, settings):
        self._settings(settings, fake)
        user = UserFactory(email="ada@shop.example", password=make_password(None))
        response = sso_login(client, fake, self._claims(), pid="azure")
        assert response["Location"] == "/"
        identity = Identity.objects.get(user=user)
        assert (identity.oid, identity.tid) == ("oid-123", TENANT)
        assert identity.issuer == f"{fake.base}/{TENANT}/v2.0"

    def test_tenant_not_allowed(self, client, fake, settings):
        self._settings(settings, fake)
        UserFactory(email="ada@shop.example", password=make_password(None))
        other = "99999999-2222-3333-4444-555555555555"
        fake.claim_overrides = {"iss": f"{fake.base}/{other}/v2.0"}
        html = failure(sso_login(client, fake, self._claims(tid=other), pid="azure"), client)
        assert "tenant" in html and last_failure_reason() == "tenant_not_allowed"

    def test_issuer_must_match_the_tokens_own_tenant(self, client, fake, settings):
        self._settings(settings, fake)
        UserFactory(email="ada@shop.example", password=make_password(None))
        fake.claim_overrides = {"iss": f"{fake.base}/99999999-2222-3333-4444-555555555555/v2.0"}
        failure(sso_login(client, fake, self._claims(), pid="azure"), client)
        assert last_failure_reason() == "bad_claim:iss"

    def test_single_tenant(self, client, fake, settings):
        self._settings(settings, fake, tenant=TENANT, allowed_tenants=[])
        UserFactory(email="ada@shop.example", password=make_password(None))
        assert sso_login(client, fake, self._claims(), pid="azure")["Location"] == "/"

    def test_noauth_unverified_email_does_not_log_in_as_its_owner(self, client, fake, settings):
        """A tenant admin set Mallory's mail attribute to the victim's address:
        the victim's account is neither matched nor linked; Mallory's own
        sign-in name is what counts."""
        self._settings(settings, fake)
        victim = UserFactory(email="victim@shop.example")
        forged = self._claims(
            email="victim@shop.example", preferred_username="mallory@shop.example"
        )
        html = failure(sso_login(client, fake, forged, pid="azure"), client)
        assert "no Back Office account for mallory@shop.example" in html
        assert not Identity.objects.exists()
        self._settings(settings, fake, strategy="auto-provision")
        attacker = Client()
        assert sso_login(attacker, fake, forged, pid="azure")["Location"] == "/"
        mallory = User.objects.get(email="mallory@shop.example")
        assert int(attacker.session["_auth_user_id"]) == mallory.pk != victim.pk
        assert not Identity.objects.filter(user=victim).exists()

    @pytest.mark.parametrize("strategy", ["pre-registered", "auto-provision"])
    def test_email_without_xms_edov_has_no_trusted_address(self, client, fake, settings, strategy):
        self._settings(settings, fake, strategy=strategy)
        UserFactory(email="victim@shop.example")
        claims = self._claims(email="victim@shop.example", preferred_username="not-an-address")
        html = failure(sso_login(client, fake, claims, pid="azure"), client)
        assert "does not vouch for your email address" in html
        assert last_failure_reason() == "email_not_verified:entra_email_without_xms_edov"
        assert not Identity.objects.exists()
        assert User.objects.count() == 1

    @pytest.mark.parametrize("edov", [True, "1", "true", 1])
    def test_email_with_xms_edov_matches(self, client, fake, settings, edov):
        self._settings(settings, fake)
        user = UserFactory(email="ada@shop.example", password=make_password(None))
        claims = self._claims(email="Ada@Shop.Example", xms_edov=edov, preferred_username="x")
        assert sso_login(client, fake, claims, pid="azure")["Location"] == "/"
        assert int(client.session["_auth_user_id"]) == user.pk

    @pytest.mark.parametrize("edov", [False, "false", "0", 0, "yes", None, [True]])
    def test_xms_edov_other_values_do_not_count(self, client, fake, settings, edov):
        self._settings(settings, fake)
        UserFactory(email="ada@shop.example", password=make_password(None))
        claims = self._claims(email="ada@shop.example", xms_edov=edov, preferred_username="x")
        failure(sso_login(client, fake, claims, pid="azure"), client)
        assert last_failure_reason() == "email_not_verified:entra_email_without_xms_edov"

    @pytest.mark.parametrize(
        "authority",
        [
            "https://sts.windows.net/99999999-2222-3333-4444-555555555555/",
            "live.com",
            "https://sts.windows.net/9188040d-6c67-4c5b-b112-36a304b66dad/",
            "",
        ],
    )
    def test_guest_or_personal_account_has_no_trusted_address(
        self, client, fake, settings, authority
    ):
        self._settings(settings, fake, strategy="auto-provision")
        UserFactory(email="ada@shop.example", password=make_password(None))
        claims = self._claims(
            idp=authority, email="ada@shop.example", xms_edov=True, upn="ada@shop.example"
        )
        html = failure(sso_login(client, fake, claims, pid="azure"), client)
        assert "does not vouch for your email address" in html
        assert last_failure_reason() == "email_not_verified:entra_guest_or_personal_account"
        assert not Identity.objects.exists() and User.objects.count() == 1

    def test_idp_naming_the_issuer_itself_is_a_member(self, client, fake, settings):
        self._settings(settings, fake)
        user = UserFactory(email="ada@shop.example", password=make_password(None))
        claims = self._claims(idp=f"{fake.base}/{TENANT}/v2.0")
        assert sso_login(client, fake, claims, pid="azure")["Location"] == "/"
        assert int(client.session["_auth_user_id"]) == user.pk

    def test_upn_of_a_member_counts(self, client, fake, settings):
        self._settings(settings, fake)
        user = UserFactory(email="ada@shop.example", password=make_password(None))
        claims = self._claims(preferred_username="Ada Lovelace", upn="ADA@shop.example")
        assert sso_login(client, fake, claims, pid="azure")["Location"] == "/"
        assert int(client.session["_auth_user_id"]) == user.pk

    def test_a_linked_identity_keeps_logging_in(self, client, fake, settings):
        """The rule is for first logins: the (issuer, subject) link holds."""
        self._settings(settings, fake)
        user = UserFactory(email="ada@shop.example", password=make_password(None))
        sso_login(client, fake, self._claims(), pid="azure")
        client.post("/logout/")
        later = self._claims(preferred_username="mallory@shop.example", idp="live.com")
        assert sso_login(client, fake, later, pid="azure")["Location"] == "/"
        assert int(client.session["_auth_user_id"]) == user.pk
        assert Identity.objects.get(user=user).email == "ada@shop.example"

    def test_name_claim_for_provisioned_entra_user(self, client, fake, settings):
        self._settings(settings, fake, strategy="auto-provision")
        claims = self._claims(preferred_username="erin@shop.example", name="Erin Evans")
        del claims["given_name"], claims["family_name"]
        assert sso_login(client, fake, claims, pid="azure")["Location"] == "/"
        user = User.objects.get(email="erin@shop.example")
        assert (user.first_name, user.last_name) == ("Erin", "Evans")


class TestAdminScreens:
    def test_users_screen_lists_and_unlinks_identities(self, client, fake, root_user):
        user = UserFactory(email="ada@shop.example", password=make_password(None))
        sso_login(Client(), fake, ADA)
        login(client, root_user.email, PASSWORD)
        html = client.get(f"/users/{user.pk}/security/").content.decode()
        assert "ada-sub-1" in html and "Unlink" in html
        identity = Identity.objects.get(user=user)
        url = f"/users/{user.pk}/identities/{identity.pk}/unlink/"
        assert client.get(url).status_code == 405
        assert (
            client.post(f"/users/{root_user.pk}/identities/{identity.pk}/unlink/").status_code
            == 404
        )
        assert client.post(url).status_code == 302
        assert not Identity.objects.exists()
        assert AuditEvent.objects.filter(action="sso.unlinked", target_id=user.pk).exists()


class TestConfiguration:
    @pytest.mark.parametrize(
        "overrides,message",
        [
            ({"kind": "ldap"}, "KIND must be one of azure, oidc, saml"),
            ({"client_id": ""}, "CLIENT_ID is required"),
            ({"issuer": ""}, "ISSUER is required"),
            ({"issuer": "http://idp.example.com"}, "must be https"),
            ({"role_map": "{not json"}, "ROLE_MAP must be JSON"),
            ({"strategy": "whatever"}, "STRATEGY must be one of"),
        ],
    )
    def test_bad_settings_fail_the_system_check(self, fake, settings, overrides, message):
        configure(settings, fake, **overrides)
        with pytest.raises(SystemCheckError, match=message):
            call_command("check")

    def test_role_map_naming_a_missing_group_is_reported_by_a_plain_check(self, fake, settings):
        GroupFactory(name="support")
        configure(settings, fake, role_map='{"admin": ["root"], "help": ["support", "suport"]}')
        err = io.StringIO()
        call_command("check", stdout=io.StringIO(), stderr=err)
        assert "sso.W001" in err.getvalue()
        assert "IAM_SSO_FAKE_ROLE_MAP maps 'help' to group 'suport'" in err.getvalue()
        assert "'support'" not in err.getvalue() and "'root'" not in err.getvalue()
        GroupFactory(name="suport")
        err = io.StringIO()
        call_command("check", stdout=io.StringIO(), stderr=err)
        assert "sso.W001" not in err.getvalue()

    def test_issuer_with_a_slash_that_discovery_does_not_name(self, fake, settings):
        configure(settings, fake, issuer=fake.issuer + "/")
        with pytest.raises(SystemCheckError) as raised:
            call_command("check")
        assert "sso.E004" in str(raised.value)
        assert f"IAM_SSO_FAKE_ISSUER is '{fake.issuer}/'" in str(raised.value)
        assert f"names issuer '{fake.issuer}'" in str(raised.value)

    def test_issuer_with_a_slash_that_discovery_names_is_fine(self, fake, settings):
        fake.discovery_issuer = fake.issuer + "/"
        configure(settings, fake, issuer=fake.issuer + "/")
        call_command("check", stdout=io.StringIO(), stderr=io.StringIO())

    def test_issuer_check_asks_discovery_only_for_a_slash_and_not_when_down(self, fake, settings):
        call_command("check", stdout=io.StringIO(), stderr=io.StringIO())
        assert fake.hits.total() == 0  # no slash: no request at start-up
        fake.discovery_status = 503
        configure(settings, fake, issuer=fake.issuer + "/")
        call_command("check", stdout=io.StringIO(), stderr=io.StringIO())
        assert fake.hits.total() == 1

    def test_azure_multi_tenant_needs_allowed_tenants(self, fake, settings):
        settings.IAM_SSO_PROVIDERS = {"azure": fake.azure_config(allowed_tenants=[])}
        with pytest.raises(SystemCheckError, match="ALLOWED_TENANTS is required"):
            call_command("check")


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_first_logins_make_one_account(fake, settings):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    from sso.registry import get_provider
    from sso.services import resolve_user

    Group.objects.get_or_create(name="backoffice-users")
    configure(settings, fake, strategy="auto-provision")
    provider = get_provider("fake")
    claims = {**ADA, "iss": fake.issuer}
    barrier, results = threading.Barrier(2), []

    def attempt():
        from django.db import connection as conn

        barrier.wait()
        try:
            by = Actor.system()
            results.append(resolve_user(by=by, provider=provider, claims=claims).pk)
        except Exception as exc:  # noqa: BLE001 - recorded for the assertion
            results.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and isinstance(results[0], int), results
    assert User.objects.filter(email="ada@shop.example").count() == 1
    assert Identity.objects.count() == 1


def age_authentication(client, seconds=11 * 60):
    """As if this session's last authentication were `seconds` old."""
    conftest.age_authentication(client.session, seconds)


class TestReauthentication:
    """A sensitive action after 10 minutes, by a session that came in through
    SSO: a fresh login at the provider, then the action is carried out."""

    def _sso_admin(self, client, fake, claims=ADA, **extra):
        ada = UserFactory(email="ada@shop.example", password=make_password(None), **extra)
        assert sso_login(client, fake, claims)["Location"] == "/"
        age_authentication(client)
        return ada

    def _asked(self, client, target):
        response = client.post(f"/users/{target.pk}/block/")
        assert response.status_code == 302
        assert response["Location"] == (
            f"/sso/fake/reauthenticate/?next=%2Fusers%2F{target.pk}%2Fblock%2F"
        )
        return response["Location"]

    def _to_provider(self, client, target):
        response = client.post("/sso/fake/reauthenticate/", {"next": f"/users/{target.pk}/block/"})
        assert response.status_code == 302
        return response["Location"]

    def _still_asked(self, client, target, response, reason):
        assert response.status_code == 302
        assert response["Location"].startswith("/sso/fake/reauthenticate/?next=")
        assert last_failure_reason() == reason
        target.refresh_from_db()
        assert target.is_active
        assert client.post(f"/users/{target.pk}/block/")["Location"].startswith(
            "/sso/fake/reauthenticate/"
        )

    def test_fresh_login_at_the_provider_then_the_action_is_done(self, client, fake):
        ada = self._sso_admin(client, fake, groups=["root"])
        target = UserFactory(email="target@shop.example")
        page = client.get(self._asked(client, target))
        target.refresh_from_db()
        assert target.is_active  # nothing happened yet
        html = page.content.decode()
        assert page.status_code == 200 and "Log in again with Fake IdP" in html
        assert 'action="/sso/fake/reauthenticate/"' in html
        assert fake.base in page["Content-Security-Policy"].split("form-action")[1]
        url = self._to_provider(client, target)
        query = parse_qs(urlsplit(url).query)
        assert query["prompt"] == ["login"] and query["max_age"] == ["0"]
        done = client.get(fake.authorize(url, ADA))
        assert done.status_code == 302 and done["Location"] == f"/users/{target.pk}/"
        target.refresh_from_db()
        assert not target.is_active  # the interrupted POST was carried out
        assert int(client.session["_auth_user_id"]) == ada.pk
        assert time.time() - client.session[SESSION_AUTHENTICATED]["at"] < 60
        assert AuditEvent.objects.filter(action="sso.reauthenticated", actor=ada).exists()

    def test_a_live_provider_session_does_not_pass(self, client, fake):
        """The provider ignored prompt=login and answered from a session an
        hour old: an unattended browser must not pass the 10-minute rule."""
        self._sso_admin(client, fake, groups=["root"])
        target = UserFactory(email="target@shop.example")
        self._asked(client, target)
        fake.ignore_prompt, fake.auth_time = True, int(time.time()) - 3600
        response = client.get(fake.authorize(self._to_provider(client, target), ADA))
        self._still_asked(client, target, response, "reauth_not_fresh")
        html = client.get(response["Location"]).content.decode()
        assert "Log in with Fake IdP failed: the provider did not ask you to log in again" in html

    def test_no_auth_time_does_not_pass(self, client, fake):
        self._sso_admin(client, fake, groups=["root"])
        target = UserFactory(email="target@shop.example")
        self._asked(client, target)
        fake.drop_claims = {"auth_time"}
        response = client.get(fake.authorize(self._to_provider(client, target), ADA))
        self._still_asked(client, target, response, "reauth_no_auth_time")

    def test_someone_elses_login_at_the_provider_is_refused(self, client, fake, settings):
        ada = self._sso_admin(client, fake, groups=["root"])
        bob = UserFactory(email="bob@shop.example")
        sso_login(Client(), fake, {**ADA, "sub": "bob-sub", "email": "bob@shop.example"})
        target = UserFactory(email="target@shop.example")
        self._asked(client, target)
        bob_claims = {**ADA, "sub": "bob-sub", "email": "bob@shop.example"}
        response = client.get(fake.authorize(self._to_provider(client, target), bob_claims))
        self._still_asked(client, target, response, "reauth_wrong_user")
        assert int(client.session["_auth_user_id"]) == ada.pk != bob.pk
        # A subject linked to no one is not matched by email nor provisioned either.
        configure(settings, fake, strategy="auto-provision")
        stranger = {**ADA, "sub": "stranger", "email": "stranger@shop.example"}
        response = client.get(fake.authorize(self._to_provider(client, target), stranger))
        self._still_asked(client, target, response, "reauth_wrong_user")
        assert not User.objects.filter(email="stranger@shop.example").exists()
        assert not Identity.objects.filter(subject="stranger").exists()

    def test_the_fresh_tokens_roles_apply_before_the_action(self, client, fake, settings):
        configure(settings, fake, role_map='{"admin": ["root"]}')
        self._sso_admin(client, fake, claims={**ADA, "roles": ["admin"]})
        UserFactory(groups=["root"])  # Ada is not the last who can manage access
        target = UserFactory(email="target@shop.example")
        self._asked(client, target)
        url = self._to_provider(client, target)
        response = client.get(fake.authorize(url, {**ADA, "roles": []}))
        assert response.status_code == 403
        target.refresh_from_db()
        assert target.is_active

    def test_password_session_of_an_account_with_both_asks_the_password(self, client, fake):
        ada = UserFactory(
            email="ada@shop.example", groups=["root"], password_proven_for="ada@shop.example"
        )
        earlier = Client()  # linked at some earlier SSO login, proven by the password
        sso_login(earlier, fake, ADA)
        earlier.post("/sso/link/password/", {"password": PASSWORD})
        login(client, ada.email, PASSWORD)
        age_authentication(client)
        target = UserFactory(email="target@shop.example")
        asked = client.post(f"/users/{target.pk}/block/")["Location"]
        assert asked.startswith("/reauthenticate/?next=")
        html = client.get(asked).content.decode()
        assert "Log in again with Fake IdP" in html
        assert "/sso/fake/reauthenticate/?next=%2Fusers%2F" in html

    def test_sso_session_of_an_account_with_both_goes_to_the_provider(self, client, fake):
        UserFactory(
            email="ada@shop.example", groups=["root"], password_proven_for="ada@shop.example"
        )
        sso_login(client, fake, ADA)
        client.post("/sso/link/password/", {"password": PASSWORD})
        age_authentication(client)
        target = UserFactory(email="target@shop.example")
        html = client.get(self._asked(client, target)).content.decode()
        assert '<a href="/reauthenticate/?next=%2Fusers%2F' in html  # the password, as an option

    def test_mfa_setup_can_be_reached_after_ten_minutes(self, client, fake, settings):
        """Root must set up MFA; the set-up page needs a recent login; the way
        to the provider and back must not be sent to the set-up page again."""
        settings.IAM_MFA_REQUIRED_GROUPS = ["root"]
        self._sso_admin(client, fake, groups=["root"])
        assert client.get("/")["Location"] == "/2fa/totp/activate/"
        asked = client.get("/2fa/totp/activate/")["Location"]
        assert asked == "/sso/fake/reauthenticate/?next=%2F2fa%2Ftotp%2Factivate%2F"
        assert client.get(asked).status_code == 200
        url = client.post("/sso/fake/reauthenticate/", {"next": "/2fa/totp/activate/"})
        back = client.get(fake.authorize(url["Location"], ADA))
        assert back["Location"] == "/2fa/totp/activate/"
        assert client.get("/2fa/totp/activate/").status_code == 200

    def test_the_page_is_for_the_users_own_providers_only(self, client, fake, settings):
        anonymous = client.get("/sso/fake/reauthenticate/?next=/")
        assert anonymous.status_code == 302 and anonymous["Location"].startswith("/login/")
        user = UserFactory(email="someone@shop.example")
        login(client, user.email, PASSWORD)
        assert client.get("/sso/fake/reauthenticate/").status_code == 404
        assert client.post("/sso/fake/reauthenticate/").status_code == 404
        assert client.get("/sso/nope/reauthenticate/").status_code == 404

    def test_provider_down_at_the_start_says_so_on_the_page(self, client, fake):
        self._sso_admin(client, fake)
        cache.delete("sso:discovery:fake")
        fake.discovery_status = 503
        response = client.post("/sso/fake/reauthenticate/", {"next": "/users/"})
        assert response["Location"] == "/sso/fake/reauthenticate/?next=%2Fusers%2F"
        html = client.get(response["Location"]).content.decode()
        assert "Log in with Fake IdP failed: the provider answered with an error" in html
        assert "Log in again with Fake IdP" in html

    def test_next_stays_on_this_site(self, client, fake):
        self._sso_admin(client, fake)
        url = client.post("/sso/fake/reauthenticate/", {"next": "https://evil.example/"})
        assert client.get(fake.authorize(url["Location"], ADA))["Location"] == "/"
