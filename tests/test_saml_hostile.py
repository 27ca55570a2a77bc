"""SAML against a hostile identity provider (issue 25): signature wrapping
(XSW1-XSW8), comments, entities, stale, misdirected, replayed and unsolicited
responses. Each is posted to our ACS through HTTP exactly as a browser would
post it; each must be refused with "Log in with <NAME> failed", one audited
reason, nobody logged in and nothing created. A correct response logs in, so
every refusal here can fail."""

import pytest
from django.test import Client
from lxml import etree, html
from signxml import XMLVerifier

from accounts.models import AuditEvent, User
from sso.models import Identity
from tests.factories import UserFactory
from tests.support.saml import (
    DS,
    NS,
    SAML,
    XSW,
    HostileIdP,
    configure_saml,
    encode,
    key_and_cert,
    read_authn_request,
    wrap,
)

pytestmark = pytest.mark.django_db

NAME = "Hostile IdP"
ANN = "ann@shop.example"
ADMIN = "admin@shop.example"
ACS = "/sso/hostile/saml/acs/"
SP_ENTITY_ID = "http://testserver/sso/hostile/saml/metadata/"
EVIL = {ANN: ADMIN}
EVIL_SITE = "https://evil.test/phish"


def configure(settings, monkeypatch, saml_files, **extra):
    configure_saml(settings, monkeypatch, saml_files, name=NAME, **extra)


@pytest.fixture
def idp(settings, monkeypatch, saml_files):
    configure(settings, monkeypatch, saml_files)
    return saml_files["idp"]


@pytest.fixture
def ann(db):
    """The pre-registered account (SSO only: no local credentials, so a
    first login links at once)."""
    return UserFactory(email=ANN, password="!")


def start(client):
    """Press "Log in with <NAME>": the AuthnRequest the IdP would receive."""
    answer = client.post("/sso/hostile/login/")
    assert answer.status_code == 302, answer
    assert answer["Location"].startswith(HostileIdP.SSO + "?"), answer["Location"]
    return read_authn_request(answer["Location"])


def post(client, response, request=None):
    """The browser's auto-submitted form from the IdP to our ACS."""
    data = {"SAMLResponse": response if isinstance(response, str) else encode(response)}
    if request is not None and request.relay_state:
        data["RelayState"] = request.relay_state
    answer = client.post(ACS, data)
    if answer.status_code == 200 and "data-autosubmit" in answer.content.decode():
        # A browser with no session here yet: the page posts the same
        # fields again from our own origin, as its script (or button) does.
        form = html.fromstring(answer.content).forms[0]
        assert form.action == ACS and dict(form.fields)["SAMLResponse"] == data["SAMLResponse"]
        answer = client.post(ACS, dict(form.fields))
    return answer


def logged_in_as(client):
    """Who the session belongs to, as a user notices it: / opens, or sends
    to the login page."""
    answer = client.get("/")
    if answer.status_code == 302 and answer["Location"].startswith("/login/"):
        return None
    assert answer.status_code == 200, answer
    return User.objects.get(pk=client.session["_auth_user_id"]).email


def assert_refused(client, answer, reason, *, users_before, victims=(ANN, ADMIN)):
    """The refusal a person and an auditor see, and nothing else happened."""
    assert answer.status_code == 302 and answer["Location"] == "/login/", answer
    page = client.get("/login/").content.decode()
    assert f"Log in with {NAME} failed" in page, page
    failures = AuditEvent.objects.filter(action="sso.failed")
    assert [(e.outcome, e.details.get("reason")) for e in failures] == [("failure", reason)]
    assert failures.get().details.get("provider") == "hostile"
    assert logged_in_as(client) is None
    assert not Identity.objects.exists()
    assert User.objects.count() == users_before
    for victim in User.objects.filter(email__in=victims):
        assert victim.last_login is None, victim.email
    return page


def refuse(client, response, reason, request=None, **kw):
    users = User.objects.count()
    return assert_refused(client, post(client, response, request), reason, users_before=users, **kw)


# --- the switch works: correct responses log in -------------------------------------


class TestBaseline:
    def test_a_correct_response_logs_ann_in(self, client, idp, ann):
        request = start(client)
        answer = post(client, idp.response(request), request)
        assert answer.status_code == 302 and answer["Location"] == "/", answer
        assert logged_in_as(client) == ANN
        ann.refresh_from_db()
        assert ann.last_login is not None  # what the refusals check stays empty
        identity = Identity.objects.get(user=ann)
        assert (identity.provider, identity.issuer, identity.subject) == (
            "hostile",
            idp.entity_id,
            ANN,
        )
        assert not AuditEvent.objects.filter(action="sso.failed").exists()

    @pytest.mark.parametrize("sign", ["assertion", "both"])
    def test_signing_the_response_too_is_fine(self, client, idp, ann, sign):
        request = start(client)
        assert post(client, idp.response(request, sign=sign), request)["Location"] == "/"
        assert logged_in_as(client) == ANN

    def test_auto_provision_creates_the_account_of_a_correct_response(
        self, client, settings, monkeypatch, saml_files
    ):
        configure(settings, monkeypatch, saml_files, strategy="auto-provision")
        request = start(client)
        answer = post(client, saml_files["idp"].response(request, name_id=ADMIN), request)
        assert answer["Location"] == "/", answer
        assert logged_in_as(client) == ADMIN

    def test_idp_initiated_when_the_operator_allows_it(
        self, client, settings, monkeypatch, saml_files
    ):
        UserFactory(email=ANN, password="!")
        configure(settings, monkeypatch, saml_files, idp_initiated="true")
        answer = client.post(
            ACS,
            {"SAMLResponse": encode(unsolicited(saml_files["idp"])), "RelayState": EVIL_SITE},
        )
        assert answer.status_code == 200  # no session yet: the same-site re-post page
        assert "data-autosubmit" in answer.content.decode()
        answer = client.post(ACS, dict(html.fromstring(answer.content).forms[0].fields))
        # Logged in, and landing here: a RelayState is no place to send anyone.
        assert answer.status_code == 302 and answer["Location"] == "/", answer
        assert logged_in_as(client) == ANN

    def test_clock_skew_within_90_seconds_is_tolerated(self, client, idp, ann):
        request = start(client)
        answer = post(client, idp.response(request, shift=60, not_before=0), request)
        assert answer["Location"] == "/", answer


def unsolicited(idp, **options):
    """A response nobody asked for, otherwise correct: addressed to our
    entity id and ACS."""
    acs = "http://testserver" + ACS
    options = {"audience": SP_ENTITY_ID} | options
    return idp.response(None, recipient=acs, destination=acs, **options)


# --- XML signature wrapping -------------------------------------------------------


@pytest.fixture(params=["victim exists", "auto-provision"])
def xsw_setup(request, settings, monkeypatch, saml_files, ann):
    """XSW runs twice: against an existing admin account, and with
    auto-provisioning on and no admin account (so a wrapped identity would
    be created)."""
    if request.param == "victim exists":
        configure(settings, monkeypatch, saml_files)
        UserFactory(email=ADMIN, password="!")
    else:
        configure(settings, monkeypatch, saml_files, strategy="auto-provision")
    return saml_files["idp"]


@pytest.mark.parametrize("kind", XSW)
def test_xml_signature_wrapping_is_refused(client, xsw_setup, kind):
    idp = xsw_setup
    request = start(client)
    # The paper's XSW1-2 wrap a signed Response; this SP wants the assertion
    # signed too, so that IdP signs both. XSW3-8 wrap the signed Assertion.
    signed = idp.response(request, sign="both" if kind in ("XSW1", "XSW2") else "assertion")
    forged = wrap(kind, signed, EVIL)
    # A real forgery: the admin's address, next to the IdP's genuine signature.
    assert ADMIN.encode() in etree.tostring(forged)
    genuine = {v.text for v in signed.iter(f"{{{DS}}}SignatureValue")}
    assert genuine <= {v.text for v in forged.iter(f"{{{DS}}}SignatureValue")}
    refuse(client, forged, "saml_assertions", request)


def test_a_response_signature_moved_into_the_assertion_is_refused(client, idp, ann):
    """The IdP signs only the Response; the signature, moved into the
    assertion, still verifies, but it does not refer to the assertion."""
    request = start(client)
    signed = idp.response(request, sign="response")
    signature = signed.find("ds:Signature", NS)
    assertion = signed.find("saml:Assertion", NS)
    assertion.find("saml:Issuer", NS).addnext(signature)
    XMLVerifier().verify(
        etree.tostring(signed), x509_cert=idp.cert.decode(), id_attribute="ID"
    )  # still a valid signature, of the Response
    refuse(client, signed, "saml_signature", request)


def test_an_assertion_changed_after_signing_is_refused(client, idp, ann):
    request = start(client)
    signed = idp.response(request, name_id="eve@shop.example")
    for node in signed.iter(f"{{{SAML}}}NameID", f"{{{SAML}}}AttributeValue"):
        if node.text == "eve@shop.example":
            node.text = ANN
    refuse(client, signed, "saml_signature", request)


# --- XML the parser must never honour ------------------------------------------------


def test_a_comment_inside_the_name_id_is_refused(client, idp, ann):
    """The attacker owns ann@shop.example.evil.test at the IdP; a comment
    leaves the signature valid (c14n drops comments), but a parser that
    reads the first text node sees ann@shop.example."""
    request = start(client)
    signed = idp.response(request, name_id=ANN + ".evil.test")
    for node in signed.iter(f"{{{SAML}}}NameID", f"{{{SAML}}}AttributeValue"):
        if node.text == ANN + ".evil.test":
            node.text = ANN
            comment = etree.Comment("")
            comment.tail = ".evil.test"
            node.append(comment)
    xml = etree.tostring(signed)
    assert f"{ANN}<!---->.evil.test".encode() in xml
    assertion = etree.fromstring(xml).find("saml:Assertion", NS)
    XMLVerifier().verify(
        etree.tostring(assertion), x509_cert=idp.cert.decode(), id_attribute="ID"
    )  # the signature still holds: only refusing comments stops this
    refuse(client, xml, "saml_xml_forbidden", request)


def _with_doctype(response, doctype: str, name_id_text: str) -> bytes:
    xml = etree.tostring(response).decode()
    xml = xml.replace(f">{ANN}</saml:NameID>", f">{name_id_text}</saml:NameID>", 1)
    return f'<?xml version="1.0"?>\n{doctype}\n{xml}'.encode()


LAUGHS = (
    '<!DOCTYPE samlp:Response [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    + "]>"
)


@pytest.mark.parametrize(
    "doctype,text",
    [
        pytest.param(
            '<!DOCTYPE samlp:Response [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
            "&xxe;",
            id="xxe-local-file",
        ),
        pytest.param(LAUGHS, "&lol9;", id="billion-laughs"),
        pytest.param("<!DOCTYPE samlp:Response>", ANN, id="doctype-alone"),
        pytest.param(
            '<!DOCTYPE samlp:Response [<!ENTITY ann "ann@shop.example">]>',
            "&ann;",
            id="internal-entity",
        ),
    ],
)
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_dtds_and_entities_are_refused(client, idp, ann, doctype, text, encoding):
    """In UTF-16 too, where a byte search for "<!DOCTYPE" finds nothing."""
    request = start(client)
    xml = _with_doctype(idp.response(request), doctype, text)
    if encoding != "utf-8":
        xml = xml.replace(
            b'<?xml version="1.0"?>', f'<?xml version="1.0" encoding="{encoding}"?>'.encode()
        )
        xml = xml.decode().encode(encoding)
        assert b"<!DOCTYPE" not in xml
    page = refuse(client, xml, "saml_xml_forbidden", request)
    assert "root:" not in page
    event = AuditEvent.objects.get(action="sso.failed")
    assert "root:" not in str(event.details)


def test_a_processing_instruction_is_refused(client, idp, ann):
    request = start(client)
    signed = idp.response(request)
    signed.find("saml:Assertion/saml:Subject", NS).addprevious(etree.PI("evil", "x"))
    refuse(client, signed, "saml_xml_forbidden", request)


# --- broken, unsigned, or signed by someone else ----------------------------------


def test_an_unsigned_assertion_inside_a_signed_response_is_refused(client, idp, ann):
    request = start(client)
    refuse(client, idp.response(request, sign="response"), "saml_unsigned", request)


def test_a_response_signed_nowhere_is_refused(client, idp, ann):
    request = start(client)
    refuse(client, idp.response(request, sign="none"), "saml_unsigned", request)


def test_a_signature_by_another_key_is_refused(client, idp, ann, saml_files):
    """Signed with a key whose certificate rides along in KeyInfo: only the
    metadata's certificate counts."""
    request = start(client)
    forged = idp.response(
        request, sign="both", key=saml_files["other_key"], cert=saml_files["other_cert"]
    )
    assert b"X509Certificate" in etree.tostring(forged)
    refuse(client, forged, "saml_signature", request)


@pytest.mark.parametrize(
    "options",
    [
        # Key confusion: HMAC keyed with the IdP's public certificate, which
        # anyone can read in its metadata.
        pytest.param({"algorithm": "hmac-sha256"}, id="hmac-with-the-public-cert"),
        # A downgrade: the IdP's own key, but SHA-1.
        pytest.param({"algorithm": "rsa-sha1", "digest": "sha1"}, id="rsa-sha1"),
    ],
)
def test_a_weak_or_confused_signature_algorithm_is_refused(client, idp, ann, options):
    request = start(client)
    key = idp.cert if options["algorithm"].startswith("hmac") else None
    forged = idp.response(request, key=key, **options)
    assert options["algorithm"].encode() in etree.tostring(forged)
    refuse(client, forged, "saml_signature", request)


def test_two_signed_assertions_are_refused(client, idp, ann):
    request = start(client)
    first = idp.response(request)
    second = idp.response(request, name_id=ADMIN).find("saml:Assertion", NS)
    first.append(second)
    refuse(client, first, "saml_assertions", request)


def test_an_encrypted_assertion_is_refused(client, idp, ann):
    request = start(client)
    response = idp.response(request)
    assertion = response.find("saml:Assertion", NS)
    encrypted = etree.Element(f"{{{SAML}}}EncryptedAssertion")
    etree.SubElement(encrypted, "{http://www.w3.org/2001/04/xmlenc#}EncryptedData")
    assertion.addprevious(encrypted)
    response.remove(assertion)
    refuse(client, response, "saml_encrypted", request)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param("%%% not base64 %%%", id="not-base64"),
        pytest.param(encode(b"<samlp:Response"), id="not-xml"),
        pytest.param(encode(b"<html><body>hi</body></html>"), id="not-a-response"),
    ],
)
def test_garbage_is_refused(client, idp, ann, payload):
    start(client)
    refuse(client, payload, "saml_malformed")


def test_an_oversized_answer_is_refused_before_reading_it(client, idp, ann):
    start(client)
    refuse(client, "A" * (1024 * 1024), "saml_malformed")


def test_the_re_post_page_does_not_run_what_it_is_given(idp):
    """The page a cookie-less POST gets echoes the fields: escaped."""
    browser = Client()
    payload = '"><script>alert(1)</script>'
    answer = browser.post(ACS, {"SAMLResponse": payload, "RelayState": payload})
    assert answer.status_code == 200
    page = answer.content.decode()
    assert "<script>alert(1)</script>" not in page
    fields = dict(html.fromstring(answer.content).forms[0].fields)
    assert fields["SAMLResponse"] == payload and fields["bounced"] == "1"


def test_a_response_without_assertion_is_refused(client, idp, ann):
    request = start(client)
    response = idp.response(request)
    response.remove(response.find("saml:Assertion", NS))
    refuse(client, response, "saml_malformed", request)


def test_a_status_other_than_success_is_refused(client, idp, ann):
    request = start(client)
    response = idp.response(request, status="urn:oasis:names:tc:SAML:2.0:status:Responder")
    refuse(client, response, "saml_status", request)


# --- signed, but not for us, not now, or not from this IdP ---------------------------


@pytest.mark.parametrize(
    "options,reason",
    [
        pytest.param({"shift": -600}, "saml_expired", id="expired"),
        pytest.param({"shift": 600}, "saml_not_yet_valid", id="not-yet-valid"),
        pytest.param(
            {"audience": "https://other-sp.example/metadata"}, "saml_audience", id="other-audience"
        ),
        pytest.param(
            {"audience": ["https://other-sp.example/metadata", SP_ENTITY_ID]},
            "saml_audience",
            id="also-restricted-to-another-audience",
        ),
        pytest.param(
            {"recipient": "https://other-sp.example/acs"}, "saml_recipient", id="other-recipient"
        ),
        pytest.param(
            {"destination": "https://other-sp.example/acs"},
            "saml_destination",
            id="other-destination",
        ),
        pytest.param({"issuer": "https://evil.test/idp"}, "saml_issuer", id="other-issuer"),
    ],
)
def test_a_misdirected_or_stale_response_is_refused(client, idp, ann, options, reason):
    request = start(client)
    refuse(client, idp.response(request, **options), reason, request)


# --- replayed, unsolicited, or meant for another browser ----------------------------


def test_a_replayed_response_is_refused(client, idp, ann):
    request = start(client)
    response = idp.response(request)
    assert post(client, response, request)["Location"] == "/"
    assert logged_in_as(client) == ANN
    client.post("/logout/")
    assert logged_in_as(client) is None
    AuditEvent.objects.all().delete()
    users = User.objects.count()
    identities = Identity.objects.count()
    answer = post(client, response, request)
    assert answer.status_code == 302 and answer["Location"] == "/login/"
    assert f"Log in with {NAME} failed" in client.get("/login/").content.decode()
    assert [e.details["reason"] for e in AuditEvent.objects.filter(action="sso.failed")] == [
        "saml_replay"
    ]
    assert logged_in_as(client) is None
    assert (User.objects.count(), Identity.objects.count()) == (users, identities)


def test_a_replayed_unsolicited_response_is_refused_in_another_browser(
    settings, monkeypatch, saml_files
):
    UserFactory(email=ANN, password="!")
    configure(settings, monkeypatch, saml_files, idp_initiated="true")
    response = unsolicited(saml_files["idp"])
    first, second = Client(), Client()
    assert post(first, response)["Location"] == "/"
    AuditEvent.objects.all().delete()
    answer = post(second, response)
    assert answer.status_code == 302 and answer["Location"] == "/login/"
    assert f"Log in with {NAME} failed" in second.get("/login/").content.decode()
    assert [e.details["reason"] for e in AuditEvent.objects.filter(action="sso.failed")] == [
        "saml_replay"
    ]
    assert logged_in_as(second) is None


def test_an_unsolicited_response_is_refused_unless_allowed(client, idp, ann):
    response = unsolicited(idp)
    refuse(client, response, "saml_unsolicited")


def test_an_unsolicited_response_is_refused_even_mid_login(client, idp, ann):
    request = start(client)
    response = unsolicited(idp, audience=request.issuer)
    refuse(client, response, "saml_unsolicited", request)


def test_a_response_to_another_browsers_request_is_refused(idp, ann):
    victim, attacker = Client(), Client()
    victims_request = start(victim)
    attackers_request = start(attacker)
    response = idp.response(victims_request)
    refuse(attacker, response, "saml_in_response_to", attackers_request)
    assert logged_in_as(victim) is None


def test_an_in_response_to_nobody_asked_for_is_refused(client, idp, ann):
    request = start(client)
    response = idp.response(request, in_response_to="_never_asked")
    refuse(client, response, "saml_in_response_to", request)


def test_an_expired_certificate_in_the_metadata_still_verifies(
    client, settings, monkeypatch, tmp_path, saml_files, ann
):
    """The metadata is what makes a key trusted, not its certificate's
    dates (SAML V2.0 Metadata Interoperability Profile §2.6.1): IdPs run on
    long-expired self-signed certificates, and a login must not stop the
    day one passes. Only the metadata's key verifies, as ever."""
    expired = HostileIdP.__new__(HostileIdP)
    expired.entity_id = saml_files["idp"].entity_id
    expired.key_path, expired.cert_path = key_and_cert(tmp_path, "old-idp", days=-30, age=3650)
    expired.metadata_path = tmp_path / "idp-metadata.xml"
    expired.metadata_path.write_bytes(expired.metadata())
    configure(settings, monkeypatch, {**saml_files, "idp": expired})
    request = start(client)
    post(client, expired.response(request), request)
    assert logged_in_as(client) == ANN
