"""Single logout over SAML's HTTP-Redirect binding, both ways (issue 25):
logging out here logs out at the IdP (a LogoutRequest signed with our key,
naming this session's NameID and SessionIndex) and the login page says so
when the IdP answers; the IdP's own LogoutRequest ends the sessions it
names, on every app server, when and only when it is signed with the
metadata's certificate, fresh and new."""

import re
from html import unescape

import pytest
from django.test import Client

from accounts.models import AuditEvent
from tests.factories import UserFactory
from tests.support.saml import (
    SAML,
    SAMLP,
    HostileIdP,
    configure_saml,
    encode,
    logout_request,
    logout_response,
    read_authn_request,
    read_redirect,
    redirect_signed_by,
    redirect_url,
)

pytestmark = pytest.mark.django_db

NAME = "Company SAML"
ANN = "ann@shop.example"
SLO = "http://testserver/sso/corp/saml/slo/"


@pytest.fixture
def idp(settings, monkeypatch, saml_files):
    configure_saml(settings, monkeypatch, saml_files, pid="corp", name=NAME)
    UserFactory(email=ANN, password="!")
    return saml_files["idp"]


def saml_login(client, idp, session_index="_session-1") -> Client:
    answer = client.post("/sso/corp/login/")
    request = read_authn_request(answer["Location"])
    response = idp.response(request, session_index=session_index)
    done = client.post("/sso/corp/saml/acs/", {"SAMLResponse": encode(response)})
    assert done.status_code == 302 and done["Location"] == "/", done
    assert client.get("/").status_code == 200
    return client


def is_logged_in(client) -> bool:
    return client.get("/").status_code == 200


def _continuation(client) -> str:
    """Log out here; the URL our continuation page sends the browser on to."""
    answer = client.post("/logout/")
    assert answer.status_code == 302
    page = client.get(answer["Location"])
    assert page.status_code == 200
    (url,) = re.findall(r'http-equiv="refresh" content="0; url=([^"]+)"', page.content.decode())
    return unescape(url)


def test_logging_out_here_logs_out_at_the_idp_and_the_login_page_says_so(client, idp, saml_files):
    saml_login(client, idp)
    url = _continuation(client)
    assert not is_logged_in(client)
    assert url.startswith(HostileIdP.SLO + "?SAMLRequest=")
    assert redirect_signed_by(url, saml_files["sp_cert"].read_bytes())
    request, relay_state = read_redirect(url)
    assert request.tag == f"{{{SAMLP}}}LogoutRequest"
    assert request.get("Destination") == HostileIdP.SLO
    assert request.findtext(f"{{{SAML}}}NameID") == ANN
    assert request.findtext(f"{{{SAMLP}}}SessionIndex") == "_session-1"
    assert request.findtext(f"{{{SAML}}}Issuer") == "http://testserver/sso/corp/saml/metadata/"

    # The IdP logs the person out and answers at our SLO endpoint.
    answer = redirect_url(
        SLO,
        "SAMLResponse",
        logout_response(idp, in_response_to=request.get("ID"), destination=SLO),
        relay_state,
        idp.key,
    )
    landed = client.get(answer, follow=True)
    assert landed.request["PATH_INFO"] == "/login/"
    assert f"You have been logged out, also at {NAME}." in landed.content.decode()


def test_an_unsigned_or_failed_logout_answer_claims_nothing(client, idp, saml_files):
    saml_login(client, idp)
    url = _continuation(client)
    request, relay_state = read_redirect(url)
    xml = logout_response(idp, in_response_to=request.get("ID"), destination=SLO)
    forged = redirect_url(SLO, "SAMLResponse", xml, relay_state, saml_files["other_key"])
    landed = client.get(forged, follow=True)
    assert landed.request["PATH_INFO"] == "/login/"
    assert "also at" not in landed.content.decode()
    failed = logout_response(
        idp,
        in_response_to=request.get("ID"),
        destination=SLO,
        status="urn:oasis:names:tc:SAML:2.0:status:Responder",
    )
    landed = client.get(
        redirect_url(SLO, "SAMLResponse", failed, relay_state, idp.key), follow=True
    )
    assert "also at" not in landed.content.decode()


def test_the_idps_logout_request_ends_that_session_only_and_is_answered(idp, saml_files):
    laptop = saml_login(Client(), idp, session_index="_laptop")
    phone = saml_login(Client(), idp, session_index="_phone")
    message_id, xml = logout_request(idp, name_id=ANN, destination=SLO, session_indexes=["_laptop"])
    # The IdP's redirect arrives in the person's browser; any browser will do.
    answer = Client().get(redirect_url(SLO, "SAMLRequest", xml, "idp-state", idp.key))
    assert not is_logged_in(laptop)
    assert is_logged_in(phone)
    assert answer.status_code == 302
    back = answer["Location"]
    assert back.startswith(HostileIdP.SLO + "?SAMLResponse=")
    assert redirect_signed_by(back, saml_files["sp_cert"].read_bytes())
    response, relay_state = read_redirect(back)
    assert response.tag == f"{{{SAMLP}}}LogoutResponse"
    assert response.get("InResponseTo") == message_id
    assert relay_state == "idp-state"
    status = response.find(f"{{{SAMLP}}}Status/{{{SAMLP}}}StatusCode").get("Value")
    assert status == "urn:oasis:names:tc:SAML:2.0:status:Success"
    event = AuditEvent.objects.get(action="sso.frontchannel_logout")
    assert event.details == {"provider": "corp", "binding": "saml-redirect", "ended": 1}

    # Without a SessionIndex: every session of that NameID.
    _id, everyone = logout_request(idp, name_id=ANN, destination=SLO)
    Client().get(redirect_url(SLO, "SAMLRequest", everyone, "", idp.key))
    assert not is_logged_in(phone)


@pytest.mark.parametrize(
    "forgery, reason",
    [
        ("another key", "saml_signature"),
        ("replayed", "saml_replay"),
        ("stale", "saml_expired"),
        ("another issuer", "saml_issuer"),
        ("another destination", "saml_destination"),
        ("unsigned", "saml_signature"),
    ],
)
def test_a_forged_stale_or_replayed_logout_request_ends_nothing(idp, saml_files, forgery, reason):
    person = saml_login(Client(), idp)
    options = {"name_id": ANN, "destination": SLO}
    if forgery == "stale":
        options["shift"] = -12 * 60  # 10 minutes and 90 s of clock skew
    if forgery == "another destination":
        options["destination"] = "http://testserver/sso/other/saml/slo/"
    key = saml_files["other_key"] if forgery == "another key" else idp.key
    if forgery == "another issuer":
        idp = HostileIdP.__new__(HostileIdP)
        idp.entity_id = "https://someone-else.example/idp"
    _id, xml = logout_request(idp, **options)
    url = redirect_url(SLO, "SAMLRequest", xml, "", key)
    if forgery == "unsigned":
        url = url.split("&SigAlg=")[0]
    if forgery == "replayed":
        # The real one, once (it ends the session), then again on a new login.
        Client().get(url)
        assert not is_logged_in(person)
        person = saml_login(Client(), idp)
    answer = Client().get(url)
    assert answer.status_code == 302 and answer["Location"] == "/login/"
    assert is_logged_in(person)
    refused = AuditEvent.objects.get(action="sso.logout_token_refused")
    assert refused.details == {"provider": "corp", "reason": reason}
    assert refused.outcome == "failure"
