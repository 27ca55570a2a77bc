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


def test_a_stranger_cannot_flood_the_audit_trail_through_the_acs(idp, client):
    """Anyone on the internet may post to the ACS (it is CSRF-exempt, and
    `bounced=1` skips the re-post page). Each refusal was one audit row and
    one warning line, without limit, while the SAML logout and the
    back-channel logout stop auditing a client past 30 refusals a minute.
    Past the rate the answer stays a refusal, only unaudited."""
    garbage = {"SAMLResponse": base64.b64encode(b"<x/>").decode(), "bounced": "1"}
    for _ in range(45):
        answer = client.post("/sso/corp/saml/acs/", garbage)
        assert answer.status_code == 302 and answer["Location"] == "/login/", answer
    failures = AuditEvent.objects.filter(action="sso.failed")
    assert 1 <= failures.count() <= 30
    assert {e.details["reason"] for e in failures} == {"saml_malformed"}
    assert not is_logged_in(client)
    # Another client (another address) is audited as before.
    other = Client(REMOTE_ADDR="192.0.2.7")
    other.post("/sso/corp/saml/acs/", garbage)
    assert failures.filter(ip="192.0.2.7").count() == 1
