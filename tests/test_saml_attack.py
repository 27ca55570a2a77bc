"""SAML as an outsider attacks it (issue 25, the attacker's review): each
test is a way in that the hostile-IdP tests (tests/test_saml_hostile.py)
did not cover, through the doors a browser uses, and what the person or
the operator would notice."""

import base64
import zlib
from urllib.parse import quote

import pytest
from django.test import Client

from accounts.models import AuditEvent
from tests.factories import UserFactory
from tests.support.saml import (
    configure_saml,
    encode,
    logout_request,
    read_authn_request,
    redirect_url,
)

pytestmark = pytest.mark.django_db

NAME = "Company SAML"
ANN = "ann@shop.example"
MALLORY = "mallory@shop.example"
SLO = "http://testserver/sso/corp/saml/slo/"


@pytest.fixture
def idp(settings, monkeypatch, saml_files):
    configure_saml(settings, monkeypatch, saml_files, pid="corp", name=NAME)
    UserFactory(email=ANN, password="!")
    UserFactory(email=MALLORY, password="!")
    return saml_files["idp"]


def saml_login(client, idp, name_id=ANN, session_index="_session-1") -> Client:
    answer = client.post("/sso/corp/login/")
    request = read_authn_request(answer["Location"])
    response = idp.response(request, name_id=name_id, session_index=session_index)
    done = client.post("/sso/corp/saml/acs/", {"SAMLResponse": encode(response)})
    assert done.status_code == 302 and done["Location"] == "/", done
    assert client.get("/").status_code == 200
    return client


def is_logged_in(client) -> bool:
    return client.get("/").status_code == 200


def deflated(xml: bytes) -> str:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return base64.b64encode(compressor.compress(xml) + compressor.flush()).decode()


# --- single logout: a field the signature does not cover --------------------------


@pytest.mark.parametrize("spelling", ["SAML%52equest", "SAMLReques%74", "%53AMLRequest"])
def test_a_second_percent_encoded_saml_request_does_not_ride_on_a_genuine_signature(
    idp, saml_files, spelling
):
    """Mallory logs out at the IdP: her browser brings a genuinely signed
    LogoutRequest naming her. She adds a second SAMLRequest field, its name
    percent-encoded, naming Ann: the signature check reads the field by its
    raw name (the genuine one), the message is read by its decoded name (the
    last one: hers). Ann must stay logged in."""
    ann = saml_login(Client(), idp, name_id=ANN, session_index="_ann")
    _id, genuine = logout_request(idp, name_id=MALLORY, destination=SLO)
    signed = redirect_url(SLO, "SAMLRequest", genuine, "", idp.key)
    _id, forged = logout_request(idp, name_id=ANN, destination=SLO)
    answer = Client().get(f"{signed}&{spelling}={quote(deflated(forged), safe='')}")
    assert is_logged_in(ann)
    assert answer.status_code == 302 and answer["Location"] == "/login/", answer
    assert not AuditEvent.objects.filter(action="sso.frontchannel_logout").exists()
    refused = AuditEvent.objects.get(action="sso.logout_token_refused")
    assert refused.details == {"provider": "corp", "reason": "saml_signature"}


# --- the audit trail: a stranger's garbage at the ACS -----------------------------


def _throttled_sso_failures(settings) -> float:
    """What /metrics says of refusals past the `sso_failed` rate."""
    from tests.support.metrics import samples, total

    settings.IAM_METRICS_TOKEN = "metrics-token-" + "m" * 32
    scrape = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {settings.IAM_METRICS_TOKEN}")
    assert scrape.status_code == 200
    return total(samples(scrape.content.decode()), "iam_throttled_total", rule="sso_failed")


def test_a_stranger_cannot_flood_the_audit_trail_through_the_acs(idp, client, settings):
    """Anyone on the internet may post to the ACS (it is CSRF-exempt, and
    `bounced=1` skips the re-post page). Each refusal was one audit row and
    one warning line, without limit, while the SAML logout and the
    back-channel logout stop auditing a client past 30 refusals a minute.
    Past the rate the answer stays a refusal, only unaudited."""
    garbage = {"SAMLResponse": base64.b64encode(b"<x/>").decode(), "bounced": "1"}
    throttled_before = _throttled_sso_failures(settings)
    for _ in range(45):
        answer = client.post("/sso/corp/saml/acs/", garbage)
        assert answer.status_code == 302 and answer["Location"] == "/login/", answer
    failures = AuditEvent.objects.filter(action="sso.failed")
    assert 1 <= failures.count() <= 30
    assert {e.details["reason"] for e in failures} == {"saml_malformed"}
    # The operator still sees them, as a rate-limit refusal of its own name.
    assert _throttled_sso_failures(settings) - throttled_before == 45 - failures.count()
    assert not is_logged_in(client)
    # Another client (another address) is audited as before.
    other = Client(REMOTE_ADDR="192.0.2.7")
    other.post("/sso/corp/saml/acs/", garbage)
    assert failures.filter(ip="192.0.2.7").count() == 1


# --- IdP-initiated sign-ins: into a browser where someone is logged in ------------

ACS_URL = "http://testserver/sso/corp/saml/acs/"
SP_ENTITY_ID = "http://testserver/sso/corp/saml/metadata/"


def unsolicited(idp, name_id):
    """A correct response nobody here asked for, as an IdP-initiated login
    (the IdP's app tile) sends it."""
    return idp.response(
        None, name_id=name_id, recipient=ACS_URL, destination=ACS_URL, audience=SP_ENTITY_ID
    )


def who(client):
    from accounts.models import User

    if not is_logged_in(client):
        return None
    return User.objects.get(pk=client.session["_auth_user_id"]).email


def cross_site_post(client, response):
    """Mallory's page posts her own, genuine, unsolicited response into the
    victim's browser: cross-site, so without the SameSite=Lax session
    cookie; our re-post page then sends it again, now with the cookie."""
    from lxml import html

    cookies = client.cookies
    client.cookies = type(cookies)()
    first = client.post("/sso/corp/saml/acs/", {"SAMLResponse": encode(response)})
    client.cookies = cookies
    assert first.status_code == 200 and "data-autosubmit" in first.content.decode()
    return client.post("/sso/corp/saml/acs/", dict(html.fromstring(first.content).forms[0].fields))


def test_an_unsolicited_response_does_not_switch_a_logged_in_session_to_another_person(
    settings, monkeypatch, saml_files
):
    """IAM_SSO_<ID>_IDP_INITIATED=true accepts what no browser asked for:
    anyone could log a stranger's browser into their own account (the known
    price). But Ann, logged in and at work, must not find her session
    quietly turned into Mallory's by a page Mallory made her open."""
    configure_saml(settings, monkeypatch, saml_files, pid="corp", name=NAME, idp_initiated="true")
    UserFactory(email=ANN, password="!")
    UserFactory(email=MALLORY, password="!")
    idp = saml_files["idp"]
    ann = saml_login(Client(), idp, name_id=ANN)
    answer = cross_site_post(ann, unsolicited(idp, MALLORY))
    assert answer.status_code == 302, answer
    assert who(ann) == ANN
    failed = AuditEvent.objects.get(action="sso.failed")
    assert failed.details["reason"] == "saml_unsolicited_logged_in"
    # Her own IdP tile still works for her, and a browser nobody is logged
    # in to takes the tile as before.
    assert cross_site_post(ann, unsolicited(idp, ANN)).status_code == 302
    assert who(ann) == ANN
    fresh = Client()
    cross_site_post(fresh, unsolicited(idp, MALLORY))
    assert who(fresh) == MALLORY


def test_signing_in_again_as_the_same_person_is_no_error(idp):
    """Ann, logged in, presses "Log in with <NAME>" again (a second tab, a
    bookmark of the login page): the IdP answers for her. Django keeps the
    session key of a same-user login, and the session list tried to add it
    a second time: a server error."""
    ann = saml_login(Client(), idp, name_id=ANN)
    saml_login(ann, idp, name_id=ANN, session_index="_again")
    assert who(ann) == ANN


# --- re-authentication: logging out and in again is no fresh proof ----------------

MFA_CONTEXT = "https://refeds.org/profile/mfa"


def test_logging_out_and_in_again_through_the_idps_live_session_is_no_re_authentication(
    idp, client
):
    """A sensitive action after 10 minutes asks "Confirm it's you", which
    sends ForceAuthn and insists on a fresh AuthnInstant: the IdP must ask
    for the password again. Someone at Ann's unlocked computer skips that:
    log out here, log in again, and the IdP's live session answers at once,
    with the AuthnInstant of Ann's morning login. That login proves nothing
    new and must not count as a fresh authentication."""
    from tests import conftest

    ann = UserFactory(email="root.ann@shop.example", password="!", groups=["root"])
    target = UserFactory(email="target@shop.example")
    saml_login(client, idp, name_id=ann.email)
    conftest.age_authentication(client.session, 11 * 60)
    asked = client.post(f"/users/{target.pk}/block/")
    assert asked["Location"].startswith("/sso/corp/reauthenticate/?next="), asked
    # Log out, and in again: no password asked at the IdP (its session is
    # four hours old), multi-factor as that session was.
    client.post("/logout/")
    answer = client.post("/sso/corp/login/")
    request = read_authn_request(answer["Location"])
    assert not request.force_authn
    response = idp.response(request, name_id=ann.email, authn_age=4 * 3600, context=MFA_CONTEXT)
    assert client.post("/sso/corp/saml/acs/", {"SAMLResponse": encode(response)})["Location"] == "/"
    assert who(client) == ann.email
    again = client.post(f"/users/{target.pk}/block/")
    assert again["Location"].startswith("/sso/corp/reauthenticate/?next="), again
    target.refresh_from_db()
    assert target.is_active


# --- claims: only the signed assertion's own words, read one way ------------------


def _ann_with_an_authenticator(idp):
    """Ann, linked already, with an authenticator app: a login asks for its
    code unless the IdP says it did multi-factor authentication."""
    from allauth.mfa.models import Authenticator

    from accounts.models import User
    from sso.models import Identity

    ann = User.objects.get(email=ANN)
    Identity.objects.create(user=ann, provider="corp", issuer=idp.entity_id, subject=ANN)
    Authenticator.objects.create(user=ann, type="totp", data={"secret": "JBSWY3DPEHPK3PXP"})
    return ann


def test_a_role_attribute_named_like_a_claim_cannot_claim_multi_factor(
    settings, monkeypatch, saml_files, client
):
    """ROLE_ATTRIBUTE=amr (a careless operator) and an `amr` attribute from
    the directory: roles, never the IdP's word that it did MFA."""
    idp = saml_files["idp"]
    configure_saml(
        settings,
        monkeypatch,
        saml_files,
        pid="corp",
        name=NAME,
        role_attribute="amr",
        role_map='{"mfa": ["support"]}',
    )
    UserFactory(email=ANN, password="!")
    _ann_with_an_authenticator(idp)
    request = read_authn_request(client.post("/sso/corp/login/")["Location"])
    response = idp.response(request, attributes={"email": [ANN], "amr": ["mfa"]})
    answer = client.post("/sso/corp/saml/acs/", {"SAMLResponse": encode(response)})
    assert answer.status_code == 302
    assert answer["Location"].startswith("/2fa/authenticate/"), answer["Location"]


def test_friendly_names_are_not_read(idp, client):
    """An attribute is known by its Name; a FriendlyName `email` on another
    attribute (SAML core §2.7.3.1: not to be relied on) names nobody."""
    from lxml import etree

    from tests.support.saml import NS, SAML, sign_element

    request = read_authn_request(client.post("/sso/corp/login/")["Location"])
    response = idp.response(request, name_id=ANN, sign="none")
    assertion = response.find("saml:Assertion", NS)
    statement = assertion.find("saml:AttributeStatement", NS)
    for attribute in statement.findall("saml:Attribute", NS):
        if attribute.get("Name") == "email":
            statement.remove(attribute)
    nickname = etree.SubElement(
        statement, f"{{{SAML}}}Attribute", Name="urn:example:nickname", FriendlyName="email"
    )
    etree.SubElement(nickname, f"{{{SAML}}}AttributeValue").text = MALLORY
    response.replace(assertion, sign_element(assertion, idp.key, idp.cert))
    client.post("/sso/corp/saml/acs/", {"SAMLResponse": encode(response)})
    assert who(client) == ANN  # the emailAddress NameID, not the nickname


def test_several_different_addresses_name_nobody(idp, client):
    request = read_authn_request(client.post("/sso/corp/login/")["Location"])
    response = idp.response(
        request,
        name_id="persistent-4711",
        name_id_format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
        attributes={"email": [ANN, MALLORY]},
    )
    answer = client.post("/sso/corp/saml/acs/", {"SAMLResponse": encode(response)})
    assert answer["Location"] == "/login/" and who(client) is None
    failed = AuditEvent.objects.get(action="sso.failed")
    assert failed.details["reason"] == "no_email"


def test_a_logout_request_naming_no_destination_ends_nothing(idp, client):
    saml_login(client, idp)
    _id, xml = logout_request(idp, name_id=ANN, destination=SLO)
    xml = xml.replace(f' Destination="{SLO}"'.encode(), b"")
    assert b"Destination" not in xml
    Client().get(redirect_url(SLO, "SAMLRequest", xml, "", idp.key))
    assert is_logged_in(client)
    refused = AuditEvent.objects.get(action="sso.logout_token_refused")
    assert refused.details["reason"] == "saml_destination"


def test_an_idp_that_ignores_force_authn_confirms_nothing(idp, client):
    """ "Confirm it's you" asks the IdP for a fresh login (ForceAuthn); an
    answer whose AuthnInstant is older than the request is refused, back on
    the confirm page, and the action waits; a fresh one carries it out."""
    from tests import conftest

    ann = UserFactory(email="root.ann@shop.example", password="!", groups=["root"])
    target = UserFactory(email="target@shop.example")
    saml_login(client, idp, name_id=ann.email)
    conftest.age_authentication(client.session, 11 * 60)
    asked = client.post(f"/users/{target.pk}/block/")
    confirm = asked["Location"]
    assert confirm.startswith("/sso/corp/reauthenticate/?next="), asked
    answer = client.post(confirm, {"next": f"/users/{target.pk}/block/"})
    request = read_authn_request(answer["Location"])
    assert request.force_authn

    stale = idp.response(request, name_id=ann.email, authn_age=3600)
    refused = client.post("/sso/corp/saml/acs/", {"SAMLResponse": encode(stale)})
    assert refused["Location"].startswith("/sso/corp/reauthenticate/?next="), refused
    assert AuditEvent.objects.get(action="sso.failed").details["reason"] == "saml_not_fresh"
    page = client.get(refused["Location"]).content.decode()
    assert "did not ask for your password again" in page
    target.refresh_from_db()
    assert target.is_active

    answer = client.post(confirm, {"next": f"/users/{target.pk}/block/"})
    request = read_authn_request(answer["Location"])
    fresh = idp.response(request, name_id=ann.email)
    client.post("/sso/corp/saml/acs/", {"SAMLResponse": encode(fresh)})
    target.refresh_from_db()
    assert not target.is_active


@pytest.mark.django_db(transaction=True)
def test_the_same_answer_posted_twice_at_once_logs_in_once(
    settings, monkeypatch, saml_files, seed_groups
):
    """Two posts of one answer racing (a double click, or a copy sent from
    elsewhere at the same moment): the assertion id is spent atomically in
    the shared cache, so one logs in and the other is a replay."""
    from django.db import connection

    from accounts.models import User
    from sso.models import Identity
    from tests.support.races import race

    if connection.vendor != "postgresql":
        pytest.skip("real races need PostgreSQL")
    configure_saml(settings, monkeypatch, saml_files, pid="corp", name=NAME)
    UserFactory(email=ANN, password="!")
    idp = saml_files["idp"]
    browser = Client()
    request = read_authn_request(browser.post("/sso/corp/login/")["Location"])
    answer = {"SAMLResponse": encode(idp.response(request))}
    copy = Client()
    copy.cookies = browser.cookies
    statuses = race(
        lambda: browser.post("/sso/corp/saml/acs/", answer),
        lambda: copy.post("/sso/corp/saml/acs/", answer),
    )
    assert statuses == [302, 302]
    assert AuditEvent.objects.filter(action="login.succeeded").count() == 1
    refused = AuditEvent.objects.get(action="sso.failed")
    assert refused.details["reason"] == "saml_replay"
    assert Identity.objects.filter(user__email=ANN).count() == 1
    assert User.objects.get(email=ANN).last_login is not None
