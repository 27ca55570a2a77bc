"""Single logout against anyone on the internet or a hostile provider:
forged, cross-provider and oversized logout requests, trail flooding, and the
continuation page. Through HTTP, against the in-process provider."""

import logging
import secrets

import pytest
from cryptography.fernet import Fernet
from django.test import Client

from accounts.login import SESSION_EXTRA
from accounts.models import AuditEvent
from sso.models import SsoSession
from tests.conftest import login
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ADA = {"sub": "ada-sub", "sid": "ada-sid-1", "email": "ada@shop.example", "email_verified": True}


@pytest.fixture
def fake(idp, settings):
    """Two providers on the same issuer: `fake`, and `other` with its own
    client id (another application registered at the same provider)."""
    idp.reset_behaviour()
    settings.IAM_SSO_PROVIDERS = {
        "fake": idp.oidc_config(frontchannel="true"),
        "other": idp.oidc_config("other", client_id="other-client", frontchannel="true"),
    }
    return idp


@pytest.fixture
def ada(fake, db):
    UserFactory(email="ada@shop.example", password="!")  # SSO only: linked at once
    return sso_client(fake, ADA)


def sso_client(idp, claims, pid="fake") -> Client:
    client = Client()
    start = client.post(f"/sso/{pid}/login/")
    done = client.get(idp.authorize(start["Location"], claims))
    assert done.status_code == 302 and done["Location"] == "/", done
    assert logged_in(client)
    return client


def logged_in(client) -> bool:
    return client.get("/account/").status_code == 200


def backchannel(token, pid="fake", client=None):
    url = f"/sso/{pid}/backchannel-logout/"
    return (client or Client()).post(url, {"logout_token": token})


# --- cross-provider ------------------------------------------------------------------


def test_a_token_for_one_provider_is_refused_at_another(fake, ada):
    token = fake.logout_token(sid="ada-sid-1")  # aud: fake's client id
    response = backchannel(token, pid="other")
    assert response.status_code == 400
    assert logged_in(ada)
    refused = AuditEvent.objects.get(action="sso.logout_token_refused")
    assert refused.details == {"provider": "other", "reason": "bad_claim:aud"}
    # Refused there, it still counts once where it belongs.
    assert backchannel(token).status_code == 200
    assert not logged_in(ada)


def test_a_token_for_the_other_provider_cannot_name_this_ones_sessions(fake, ada):
    token = fake.logout_token(sid="ada-sid-1", sub="ada-sub", aud="other-client")
    assert backchannel(token, pid="other").status_code == 200  # valid there...
    assert logged_in(ada)  # ...but ada's session came through `fake`
    assert SsoSession.objects.filter(provider="fake", sid="ada-sid-1").exists()


def test_the_front_channel_of_another_provider_ends_nothing(fake, ada):
    response = Client().get(
        "/sso/other/frontchannel-logout/", {"iss": fake.issuer, "sid": "ada-sid-1"}
    )
    assert response.status_code == 200
    assert logged_in(ada)


def test_a_sid_with_another_subject_ends_nothing(fake, ada):
    assert backchannel(fake.logout_token(sid="ada-sid-1", sub="bob-sub")).status_code == 200
    assert logged_in(ada)


def test_a_password_session_cannot_be_ended_by_the_provider(fake, password):
    user = UserFactory(email="ada@shop.example")
    user.set_password(password)
    user.save()
    browser = Client()
    assert login(browser, "ada@shop.example", password).status_code == 302
    assert backchannel(fake.logout_token(sub="ada-sub")).status_code == 200
    Client().get("/sso/fake/frontchannel-logout/", {"sid": ""})
    assert logged_in(browser)


# --- oversized and malformed requests ------------------------------------------------


def test_a_huge_body_is_a_400_and_ends_nothing(fake, ada):
    big = "logout_token=" + "a" * (3 * 1024 * 1024)
    response = Client().post(
        "/sso/fake/backchannel-logout/", big, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code in (400, 413)
    many = "&".join(f"f{i}=x" for i in range(5000))
    response = Client().post(
        "/sso/fake/backchannel-logout/", many, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
    assert logged_in(ada)


def test_a_huge_upload_is_refused_before_it_is_read(fake, ada):
    """Django caps form fields, not uploaded files: a multipart body is
    spooled to disk whatever its size unless the door looks at its length."""
    from io import BytesIO

    upload = BytesIO(b"x" * (3 * 1024 * 1024))
    upload.name = "big.bin"
    response = Client().post(
        "/sso/fake/backchannel-logout/", {"logout_token": "a.b.c", "file": upload}
    )
    assert response.status_code == 413
    assert logged_in(ada)


@pytest.mark.parametrize("body", ['{"logout_token": "x.y.z"}', "logout_token=%ff.%fe.%00"])
def test_odd_bodies_are_400(fake, ada, body):
    response = Client().post(
        "/sso/fake/backchannel-logout/", body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
    assert logged_in(ada)


# --- the audit trail cannot be flooded by strangers ----------------------------------


def test_refused_logout_tokens_are_throttled_and_stop_filling_the_trail(fake, ada):
    statuses = [backchannel(f"a.{i}.c").status_code for i in range(40)]
    assert statuses[:30] == [400] * 30
    assert set(statuses[30:]) == {429}
    assert AuditEvent.objects.filter(action="sso.logout_token_refused").count() == 30
    late = backchannel("a.b.c")
    assert late.status_code == 429 and int(late["Retry-After"]) > 0
    # The provider's real token still works from the same address.
    assert backchannel(fake.logout_token(sid="ada-sid-1")).status_code == 200
    assert not logged_in(ada)


def test_front_channel_calls_naming_no_session_leave_no_trail(fake, ada):
    for _ in range(20):
        Client().get("/sso/fake/frontchannel-logout/", {"sid": secrets.token_urlsafe(8)})
    assert not AuditEvent.objects.filter(action="sso.frontchannel_logout").exists()
    assert logged_in(ada)
    Client().get("/sso/fake/frontchannel-logout/", {"sid": "ada-sid-1"})
    assert AuditEvent.objects.filter(action="sso.frontchannel_logout").count() == 1
    assert not logged_in(ada)


# --- the continuation page ------------------------------------------------------------


@pytest.mark.parametrize(
    "to",
    [
        "https://evil.example/",
        "//evil.example/",
        "javascript:alert(1)",
        Fernet(Fernet.generate_key()).encrypt(b"https://evil.example/").decode(),
        "",
    ],
)
def test_the_continuation_page_is_no_open_redirect(fake, to):
    response = Client().get("/sso/fake/logout/", {"to": to})
    assert response.status_code == 302
    assert response["Location"] == "/login/"


def test_the_continuation_leaks_no_id_token_to_logs_or_referer(fake, ada, caplog):
    id_token = ada.session[SESSION_EXTRA]["id_token"]
    with caplog.at_level(logging.DEBUG):
        page_url = ada.post("/logout/")["Location"]
        page = ada.get(page_url)
    assert id_token not in page_url
    assert all(id_token not in r.getMessage() for r in caplog.records)
    html = page.content.decode()
    assert '<meta name="referrer" content="no-referrer">' in html
    assert page["Referrer-Policy"] == "same-origin"
    assert "no-store" in page["Cache-Control"]
    # Unknown provider in the path: 404, the link is not followed.
    assert Client().get(page_url.replace("/sso/fake/", "/sso/nope/")).status_code == 404


def test_the_continuation_link_works_once(fake, ada):
    """The link carries the ID token (encrypted) for a few minutes; a proxy's
    access log keeps query strings, so a copy of the link read there must
    not give the ID token back: the person's own browser used it already."""
    id_token = ada.session[SESSION_EXTRA]["id_token"]
    page_url = ada.post("/logout/")["Location"]
    assert id_token in ada.get(page_url).content.decode()
    for copy in (page_url, page_url + "%21", page_url + "%3D%3D", page_url + "%0A"):
        replay = Client().get(copy)  # the same token, spelt another way
        assert replay.status_code == 302 and replay["Location"] == "/login/", copy
