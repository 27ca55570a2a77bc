"""The per-provider switches an operator needs for real providers (glewlwyd,
Keycloak, Entra ID, any OIDC), through the doors people use: the HTTP round
trip against the in-process provider, `manage.py check`, `manage.py sso`.

- IAM_SSO_<ID>_REAUTH: how re-authentication is asked (`max_age`: max_age=0
  and prompt=login; `prompt`: prompt=login only, for a provider that refuses
  max_age=0 or always answers auth_time 0).
- IAM_SSO_<ID>_TRUST_EMAIL: believe the provider's address without
  `email_verified` (Keycloak's "Trust Email").
- `manage.py sso refresh [ID]`: discovery and keys fetched again now.
"""

import io
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.hashers import make_password
from django.core.cache import cache
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError

from accounts.models import AuditEvent, User
from sso.models import Identity
from tests import conftest
from tests.factories import UserFactory
from tests.support.sso import configure, sso_login, start

pytestmark = pytest.mark.django_db

ADA = {
    "sub": "ada-sub-1",
    "email": "ada@shop.example",
    "email_verified": True,
    "given_name": "Ada",
    "family_name": "Lovelace",
}
UNPROVEN = {k: v for k, v in ADA.items() if k != "email_verified"}


def failure(response, client) -> str:
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert "_auth_user_id" not in client.session
    return client.get("/login/").content.decode()


def last_failure_reason() -> str:
    return AuditEvent.objects.filter(action="sso.failed").latest("id").details["reason"]


def sso_only_user(**extra):
    """An account with no local credential: linking it needs no proof of control."""
    return UserFactory(email="ada@shop.example", password=make_password(None), **extra)


class TestReauthenticationRequest:
    """A sensitive action after 10 minutes by a session that came in through
    SSO, at providers that do not take max_age=0 as OpenID Connect says."""

    def _asked(self, client, fake, target):
        sso_only_user(groups=["root"])
        assert sso_login(client, fake, ADA)["Location"] == "/"
        conftest.age_authentication(client.session)
        response = client.post(f"/users/{target.pk}/block/")
        assert response["Location"].startswith("/sso/fake/reauthenticate/?next=")

    def _to_provider(self, client, target) -> str:
        response = client.post("/sso/fake/reauthenticate/", {"next": f"/users/{target.pk}/block/"})
        assert response.status_code == 302
        return response["Location"]

    def _done(self, response, target):
        assert response.status_code == 302 and response["Location"] == f"/users/{target.pk}/"
        target.refresh_from_db()
        assert not target.is_active

    def _refused(self, client, response, target) -> str:
        assert response.status_code == 302
        assert response["Location"].startswith("/sso/fake/reauthenticate/?next=")
        target.refresh_from_db()
        assert target.is_active
        return client.get(response["Location"]).content.decode()

    def test_a_provider_refusing_max_age_is_named_not_pkce(self, client, fake):
        """glewlwyd answers max_age=0 with invalid_request "max_age invalid":
        the page says so and names the switch, and does not blame PKCE."""
        target = UserFactory(email="target@shop.example")
        self._asked(client, fake, target)
        fake.max_age = "refused"
        url = self._to_provider(client, target)
        assert parse_qs(urlsplit(url).query)["max_age"] == ["0"]
        html = self._refused(client, client.get(fake.authorize(url, ADA)), target)
        assert "max_age invalid" in html
        assert "IAM_SSO_FAKE_REAUTH" in html
        assert "PKCE" not in html
        assert last_failure_reason() == "idp_error:invalid_request:check_reauth"

    def test_reauth_prompt_for_a_provider_refusing_max_age(self, client, fake, settings):
        configure(settings, fake, reauth="prompt")
        fake.max_age = "refused"
        target = UserFactory(email="target@shop.example")
        self._asked(client, fake, target)
        url = self._to_provider(client, target)
        query = parse_qs(urlsplit(url).query)
        assert query["prompt"] == ["login"] and "max_age" not in query
        self._done(client.get(fake.authorize(url, ADA)), target)
        assert AuditEvent.objects.filter(action="sso.reauthenticated").exists()

    def test_auth_time_zero_with_max_age_names_what_the_provider_said(self, client, fake):
        target = UserFactory(email="target@shop.example")
        self._asked(client, fake, target)
        fake.claim_overrides = {"auth_time": 0}
        url = self._to_provider(client, target)
        html = self._refused(client, client.get(fake.authorize(url, ADA)), target)
        assert "auth_time 0" in html and "IAM_SSO_FAKE_REAUTH" in html
        assert "PKCE" not in html
        assert last_failure_reason() == "reauth_auth_time_zero"

    @pytest.mark.parametrize("auth_time", [0, None])
    def test_auth_time_zero_or_none_with_prompt_passes(self, client, fake, settings, auth_time):
        configure(settings, fake, reauth="prompt")
        target = UserFactory(email="target@shop.example")
        self._asked(client, fake, target)
        if auth_time is None:
            fake.drop_claims = {"auth_time"}
        else:
            fake.claim_overrides = {"auth_time": auth_time}
        self._done(client.get(fake.authorize(self._to_provider(client, target), ADA)), target)

    def test_prompt_still_refuses_an_auth_time_from_before(self, client, fake, settings):
        """A provider that ignores prompt=login and says so (an auth_time an
        hour old) does not pass with REAUTH=prompt either."""
        configure(settings, fake, reauth="prompt")
        target = UserFactory(email="target@shop.example")
        self._asked(client, fake, target)
        fake.ignore_prompt, fake.auth_time = True, int(time.time()) - 3600
        url = self._to_provider(client, target)
        html = self._refused(client, client.get(fake.authorize(url, ADA)), target)
        assert "did not ask you to log in again" in html
        assert last_failure_reason() == "reauth_not_fresh"

    def test_a_login_is_not_a_reauthentication_and_pkce_is_still_named_there(self, client, fake):
        """The max_age hint is for re-authentication only; a login's
        invalid_request still points at PKCE, now with what the provider said."""
        sso_only_user()
        fake.pkce = "refused"
        html = failure(sso_login(client, fake, ADA), client)
        assert "IAM_SSO_FAKE_PKCE" in html and "PKCE is not enabled for this client" in html
        assert "REAUTH" not in html

    @pytest.mark.parametrize(
        "status,error,shown",
        [(403, "unauthorized_client", "unauthorized_client"), (500, "", "HTTP 500")],
    )
    def test_the_token_endpoints_answer_is_named(self, client, fake, status, error, shown):
        """glewlwyd answers unauthorized_client to a client whose token
        endpoint auth method is not client_secret_basic: say so."""
        sso_only_user()
        fake.token_status, fake.token_error = status, error
        html = failure(sso_login(client, fake, ADA), client)
        assert f"refused the sign-in code; it answered: {shown}" in html

    def test_a_misspelt_reauth_setting_fails_the_check(self, fake, settings):
        configure(settings, fake, reauth="max-age")
        with pytest.raises(SystemCheckError, match="IAM_SSO_FAKE_REAUTH must be max_age or prompt"):
            call_command("check")


class TestTrustEmail:
    def test_no_email_verified_is_refused_by_default(self, client, fake):
        sso_only_user()
        assert "does not vouch for your email" in failure(sso_login(client, fake, UNPROVEN), client)
        assert last_failure_reason() == "email_not_verified:email_verified_not_true"
        assert not Identity.objects.exists()

    def test_trust_email_links_a_provider_without_email_verified(self, client, fake, settings):
        configure(settings, fake, trust_email="true")
        ada = sso_only_user()
        assert sso_login(client, fake, UNPROVEN)["Location"] == "/"
        assert int(client.session["_auth_user_id"]) == ada.pk
        assert Identity.objects.get(user=ada).subject == "ada-sub-1"
        # The trail says the link rests on the operator's word, not the provider's.
        linked = AuditEvent.objects.get(action="sso.linked")
        assert linked.details["email_vouched_by"] == "trust_email"

    def test_trust_email_provisions_too(self, client, fake, settings):
        configure(settings, fake, trust_email="yes", strategy="auto-provision")
        assert sso_login(client, fake, {**UNPROVEN, "email": "new@shop.example"})["Location"]
        assert User.objects.filter(email="new@shop.example").exists()

    @pytest.mark.parametrize("verified", [False, "false"])
    def test_a_provider_that_says_unverified_is_still_refused(
        self, client, fake, settings, verified
    ):
        configure(settings, fake, trust_email="true")
        sso_only_user()
        claims = {**ADA, "email_verified": verified}
        assert "does not vouch for your email" in failure(sso_login(client, fake, claims), client)
        assert not Identity.objects.exists()

    def test_check_warns_while_it_is_on(self, fake, settings):
        err = io.StringIO()
        call_command("check", stdout=io.StringIO(), stderr=err)
        assert "sso.W002" not in err.getvalue()
        configure(settings, fake, trust_email="true")
        call_command("check", stdout=io.StringIO(), stderr=err)
        assert "sso.W002" in err.getvalue()
        assert "IAM_SSO_FAKE_TRUST_EMAIL is on" in err.getvalue()

    def test_a_misspelt_value_fails_the_check(self, fake, settings):
        configure(settings, fake, trust_email="si")
        with pytest.raises(
            SystemCheckError, match="IAM_SSO_FAKE_TRUST_EMAIL must be true or false"
        ):
            call_command("check")

    def test_not_for_entra_id(self, fake, settings):
        """nOAuth: any tenant's admin can set Entra's `email` to anyone's."""
        settings.IAM_SSO_PROVIDERS = {"azure": fake.azure_config(trust_email="true")}
        with pytest.raises(SystemCheckError, match="IAM_SSO_AZURE_TRUST_EMAIL"):
            call_command("check")


def refresh(*args) -> str:
    out = io.StringIO()
    call_command("sso", "refresh", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


class TestRefresh:
    def test_new_keys_are_used_at_once_after_a_refresh(self, client, fake):
        """Two key rotations within a minute: the second one's tokens wait
        for the refetch interval, unless the operator refreshes."""
        sso_only_user()
        assert sso_login(client, fake, ADA)["Location"] == "/"
        fake.rotate_keys()
        client.post("/logout/")
        assert sso_login(client, fake, ADA)["Location"] == "/"  # refetched once
        fake.rotate_keys()
        client.post("/logout/")
        failure(sso_login(client, fake, ADA), client)
        assert last_failure_reason() == "jwks_refresh_pending"
        assert "fake: discovery and keys fetched again (1 key)" in refresh("fake")
        event = AuditEvent.objects.get(action="sso.metadata_refreshed")
        assert (event.target_label, event.details) == ("fake", {"keys": 1})
        assert event.actor_label == "cli"
        fake.hits.clear()
        assert sso_login(client, fake, ADA)["Location"] == "/"
        assert (
            fake.hits["/realm/jwks"] == 0
            and fake.hits["/realm/.well-known/openid-configuration"] == 0
        )

    def test_a_moved_endpoint_is_used_after_a_refresh(self, client, fake, settings):
        settings.IAM_SSO_PROVIDERS = {
            "fake": fake.oidc_config(),
            "other": fake.oidc_config("other", name="Other"),
        }
        assert start(client).startswith(f"{fake.issuer}/authorize?")
        start(client, "other")
        fake.discovery_extra = {"authorization_endpoint": f"{fake.issuer}/v2/authorize"}
        assert start(client).startswith(f"{fake.issuer}/authorize?")  # cached for an hour
        out = refresh()  # every provider
        assert "fake: discovery and keys fetched again" in out
        assert "other: discovery and keys fetched again" in out
        assert start(client).startswith(f"{fake.issuer}/v2/authorize?")
        assert start(client, "other").startswith(f"{fake.issuer}/v2/authorize?")

    def test_unknown_provider_is_a_one_line_error(self, fake):
        with pytest.raises(
            CommandError, match="^unknown identity provider 'nope' \\(configured: fake\\)$"
        ):
            refresh("nope")

    def test_a_provider_that_does_not_answer_keeps_what_was_cached(self, client, fake):
        sso_only_user()
        assert sso_login(client, fake, ADA)["Location"] == "/"
        fake.discovery_status = 503
        with pytest.raises(CommandError, match="fake: not refreshed: .*answered with an error"):
            refresh("fake")
        assert cache.get("sso:discovery:fake") is not None
        client.post("/logout/")
        assert sso_login(client, fake, ADA)["Location"] == "/"

    def test_a_bad_discovery_is_not_cached(self, client, fake):
        start(client)
        fake.discovery_extra = {"token_endpoint": "http://idp.example.com/token"}
        with pytest.raises(CommandError, match="not refreshed"):
            refresh("fake")
        assert cache.get("sso:discovery:fake")["token_endpoint"] == f"{fake.issuer}/token"

    def test_no_provider_configured(self, settings):
        settings.IAM_SSO_PROVIDERS = {}
        assert "No identity provider is configured" in refresh()
