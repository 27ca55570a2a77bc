"""SAML test material: key pairs and certificates (for our SP and for test
identity providers), and a small identity provider that can lie.

`HostileIdP` never listens: its metadata names http://127.0.0.1 endpoints
nobody contacts, and it answers an AuthnRequest (read from the Location of
our login redirect) with a Response the test then posts to our ACS, built
with lxml and signed with signxml exactly as a real IdP would. Knobs make it
misbehave (wrong audience, shifted clocks, foreign key, ...); `wrap` applies
the XML signature wrapping attacks (XSW1-XSW8) the way SAML Raider does.
"""

from __future__ import annotations

import base64
import copy
import secrets
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import XMLSigner

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
EMAIL_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
NS = {"samlp": SAMLP, "saml": SAML, "ds": DS, "md": MD}


def key_and_cert(directory: Path, cn: str, *, days: int = 365, age: int = 1) -> tuple[Path, Path]:
    """An RSA-2048 key and a self-signed SHA-256 certificate for `cn`, as
    PEM files in `directory`: (key path, certificate path). The certificate
    was made `age` days ago and is valid for `days` days from now (negative:
    expired that long ago)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=age))
        .not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key_path, cert_path = directory / f"{cn}.key", directory / f"{cn}.crt"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


@dataclass(frozen=True)
class AuthnRequest:
    """What our SP asked for, as the IdP reads it from the redirect."""

    id: str
    acs: str
    issuer: str
    destination: str
    force_authn: bool
    relay_state: str


def read_authn_request(location: str) -> AuthnRequest:
    """The AuthnRequest of an HTTP-Redirect binding URL (deflate + base64)."""
    query = parse_qs(urlsplit(location).query)
    xml = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15)
    root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    assert root.tag == f"{{{SAMLP}}}AuthnRequest", root.tag
    return AuthnRequest(
        id=root.get("ID"),
        acs=root.get("AssertionConsumerServiceURL"),
        issuer=root.findtext("saml:Issuer", namespaces=NS),
        destination=root.get("Destination"),
        force_authn=root.get("ForceAuthn") == "true",
        relay_state=query.get("RelayState", [""])[0],
    )


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _id() -> str:
    return "_" + secrets.token_hex(16)


def _sub(parent, ns: str, tag: str, text: str | None = None, **attrib):
    element = etree.SubElement(parent, f"{{{ns}}}{tag}", {k: v for k, v in attrib.items() if v})
    if text is not None:
        element.text = text
    return element


def encode(root) -> str:
    """The SAMLResponse form field: base64 of the serialized document."""
    if isinstance(root, (bytes, str)):
        data = root.encode() if isinstance(root, str) else root
    else:
        data = etree.tostring(root)
    return base64.b64encode(data).decode()


class HostileIdP:
    """An IdP that signs with its own key (named in its metadata) and, on
    request, with anything else."""

    SSO = "http://127.0.0.1:9/idp/sso"
    SLO = "http://127.0.0.1:9/idp/slo"

    def __init__(self, directory, entity_id: str = "http://127.0.0.1:9/idp/metadata"):
        directory = Path(directory)
        self.entity_id = entity_id
        self.key_path, self.cert_path = key_and_cert(directory, "hostile-idp")
        self.metadata_path = directory / "idp-metadata.xml"
        self.metadata_path.write_bytes(self.metadata())

    @property
    def key(self) -> bytes:
        return self.key_path.read_bytes()

    @property
    def cert(self) -> bytes:
        return self.cert_path.read_bytes()

    def metadata(self) -> bytes:
        root = etree.Element(f"{{{MD}}}EntityDescriptor", nsmap={"md": MD, "ds": DS})
        root.set("entityID", self.entity_id)
        idp = _sub(
            root,
            MD,
            "IDPSSODescriptor",
            protocolSupportEnumeration=SAMLP,
            WantAuthnRequestsSigned="true",
        )
        key = _sub(idp, MD, "KeyDescriptor", use="signing")
        data = _sub(_sub(key, DS, "KeyInfo"), DS, "X509Data")
        _sub(data, DS, "X509Certificate", _cert_body(self.cert))
        _sub(idp, MD, "SingleLogoutService", Binding=REDIRECT, Location=self.SLO)
        _sub(idp, MD, "NameIDFormat", EMAIL_FORMAT)
        _sub(idp, MD, "SingleSignOnService", Binding=REDIRECT, Location=self.SSO)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    def response(
        self,
        request: AuthnRequest | None,
        *,
        name_id: str = "ann@shop.example",
        attributes: dict | None = None,
        sign: str = "assertion",
        shift: int = 0,
        not_before: int = -60,
        lifetime: int = 300,
        audience: str | list | None = None,
        recipient: str | None = None,
        destination: str | None = None,
        issuer: str | None = None,
        in_response_to: str | None = "",
        status: str = SUCCESS,
        key: bytes | None = None,
        cert: bytes | None = None,
        algorithm: str = "rsa-sha256",
        digest: str = "sha256",
        session_index: str | None = None,
        name_id_format: str = EMAIL_FORMAT,
        authn_age: int = 0,
        context: str = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
    ):
        """A samlp:Response (lxml element) answering `request` (None: an
        unsolicited one). `sign` is "assertion", "response", "both" or
        "none", with `algorithm`/`digest` (signxml's names); times move by
        `shift` seconds; `authn_age`: how long ago the person authenticated
        at the IdP (its live session answers without asking again); the
        other keywords override what a correct IdP would put there."""
        now = datetime.now(UTC) + timedelta(seconds=shift)
        issued, start = _instant(now), _instant(now + timedelta(seconds=not_before))
        end = _instant(now + timedelta(seconds=lifetime))
        acs = request.acs if request else ""
        if in_response_to == "":
            in_response_to = request.id if request else None
        audience = audience if audience is not None else (request.issuer if request else "")
        issuer = issuer or self.entity_id
        attributes = (
            attributes
            if attributes is not None
            else {
                "email": [name_id],
                "givenName": ["Ann"],
                "sn": ["Example"],
                "Role": ["staff"],
            }
        )

        response = etree.Element(f"{{{SAMLP}}}Response", nsmap={"samlp": SAMLP, "saml": SAML})
        response_id = _id()
        response.attrib.update(
            {"ID": response_id, "Version": "2.0", "IssueInstant": issued}
            | ({"Destination": destination or acs} if (destination or acs) else {})
            | ({"InResponseTo": in_response_to} if in_response_to else {})
        )
        _sub(response, SAML, "Issuer", issuer)
        _sub(_sub(response, SAMLP, "Status"), SAMLP, "StatusCode", Value=status)

        assertion = etree.Element(f"{{{SAML}}}Assertion", nsmap={"saml": SAML})
        assertion_id = _id()
        assertion.attrib.update({"ID": assertion_id, "Version": "2.0", "IssueInstant": issued})
        _sub(assertion, SAML, "Issuer", issuer)
        subject = _sub(assertion, SAML, "Subject")
        _sub(subject, SAML, "NameID", name_id, Format=name_id_format)
        confirmation = _sub(
            subject, SAML, "SubjectConfirmation", Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"
        )
        _sub(
            confirmation,
            SAML,
            "SubjectConfirmationData",
            NotOnOrAfter=end,
            Recipient=recipient or acs,
            InResponseTo=in_response_to,
        )
        conditions = _sub(assertion, SAML, "Conditions", NotBefore=start, NotOnOrAfter=end)
        # A list: one AudienceRestriction per audience (each must hold).
        for restricted in audience if isinstance(audience, list) else [audience]:
            _sub(_sub(conditions, SAML, "AudienceRestriction"), SAML, "Audience", restricted)
        statement = _sub(
            assertion,
            SAML,
            "AuthnStatement",
            AuthnInstant=_instant(now - timedelta(seconds=authn_age)),
            SessionIndex=session_index or _id(),
            SessionNotOnOrAfter=_instant(now + timedelta(hours=8)),
        )
        _sub(
            _sub(statement, SAML, "AuthnContext"),
            SAML,
            "AuthnContextClassRef",
            context,
        )
        if attributes:
            attrs = _sub(assertion, SAML, "AttributeStatement")
            for attr_name, values in attributes.items():
                attribute = _sub(
                    attrs,
                    SAML,
                    "Attribute",
                    Name=attr_name,
                    NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic",
                )
                for value in values:
                    _sub(attribute, SAML, "AttributeValue", value)

        key = key or self.key
        cert = None if algorithm.startswith("hmac") else (cert or self.cert)
        if sign in ("assertion", "both"):
            assertion = sign_element(assertion, key, cert, algorithm, digest)
        response.append(assertion)
        if sign in ("response", "both"):
            response = sign_element(response, key, cert, algorithm, digest)
        return response


def _cert_body(pem: bytes) -> str:
    return "".join(pem.decode().strip().splitlines()[1:-1])


class _AnySigner(XMLSigner):
    """signxml, minus its refusal to sign with SHA-1: a downgrade test needs
    a genuine SHA-1 signature."""

    def check_deprecated_methods(self):
        pass


def sign_element(
    element, key: bytes, cert: bytes | None, algorithm: str = "rsa-sha256", digest: str = "sha256"
):
    """`element` signed as an IdP signs: an enveloped signature (rsa-sha256,
    exclusive c14n) right after its Issuer, referring to its ID. An hmac
    `algorithm` uses `key` as the shared secret and names no certificate."""
    element = copy.deepcopy(element)
    placeholder = etree.Element(f"{{{DS}}}Signature", Id="placeholder", nsmap={"ds": DS})
    element.find("saml:Issuer", NS).addnext(placeholder)
    signer = _AnySigner(
        signature_algorithm=algorithm, digest_algorithm=digest, c14n_algorithm=EXC_C14N
    )
    return signer.sign(
        element,
        key=key,
        cert=cert.decode() if cert else None,
        reference_uri="#" + element.get("ID"),
    )


# --- XML signature wrapping (Somorovsky et al. 2012; SAML Raider's XSWHelpers)

XSW = ("XSW1", "XSW2", "XSW3", "XSW4", "XSW5", "XSW6", "XSW7", "XSW8")


def _first(root, tag: str):
    return next(root.iter(f"{{*}}{tag}"))


def _evil(element, replace: dict) -> None:
    """SAML Raider's match-and-replace: every text node equal to a key
    gets the value (the NameID, the email attribute)."""
    for node in element.iter():
        if node.text is not None and node.text.strip() and node.text in replace:
            node.text = replace[node.text]


def _without_signature(element):
    signature = _first(element, "Signature")
    signature.getparent().remove(signature)
    return element


def wrap(kind: str, response, replace: dict):
    """`response` (signed as the variant expects: the Response for XSW1-2,
    the Assertion for XSW3-8) rewritten by XML signature wrapping variant
    `kind`, following CompassSecurity/SAMLRaider helpers/XSWHelpers.java."""
    root = copy.deepcopy(response)
    if kind in ("XSW1", "XSW2"):
        # The signed Response, moved (unsigned copy) into or next to the
        # signature; the outer Response is the evil one.
        original = _without_signature(copy.deepcopy(root))
        _evil(root, replace)
        signature = _first(root, "Signature")
        if kind == "XSW1":
            signature.append(original)
        else:
            signature.addprevious(original)
        root.set("ID", "_evil_response_ID")
        return root
    assertion = _first(root, "Assertion")
    if kind == "XSW3":
        # An evil unsigned assertion before the signed one.
        evil = _without_signature(copy.deepcopy(assertion))
        _evil(evil, replace)
        evil.set("ID", "_evil_assertion_ID")
        assertion.addprevious(evil)
    elif kind == "XSW4":
        # The signed assertion inside an evil one at the end.
        evil = _without_signature(copy.deepcopy(assertion))
        _evil(evil, replace)
        evil.set("ID", "_evil_assertion_ID")
        root.append(evil)
        evil.append(assertion)
    elif kind == "XSW5":
        # The signed assertion's content made evil (its signature kept), an
        # unsigned copy of the original at the end.
        original = _without_signature(copy.deepcopy(assertion))
        _evil(assertion, replace)
        root.append(original)
        assertion.set("ID", "_evil_assertion_ID")
    elif kind == "XSW6":
        # As XSW5, the original copy inside the signature.
        signature = _first(assertion, "Signature")
        original = _without_signature(copy.deepcopy(assertion))
        _evil(assertion, replace)
        signature.append(original)
        assertion.set("ID", "_evil_assertion_ID")
    elif kind == "XSW7":
        # An evil copy (same ID) inside an <Extensions> before the assertion.
        extensions = etree.Element("Extensions")
        assertion.addprevious(extensions)
        evil = _without_signature(copy.deepcopy(assertion))
        _evil(evil, replace)
        extensions.append(evil)
    elif kind == "XSW8":
        # The signed assertion made evil (same ID), the original copy inside
        # an <Object> in its signature.
        signature = _first(assertion, "Signature")
        original = _without_signature(copy.deepcopy(assertion))
        _evil(assertion, replace)
        obj = etree.SubElement(signature, "Object")
        obj.append(original)
    else:
        raise ValueError(kind)
    return root


def configure_saml(settings, monkeypatch, files, *, pid="hostile", name="Hostile IdP", **extra):
    """A SAML provider exactly as iam.settings builds it from IAM_SSO_<PID>_*,
    with the conftest's `saml_files`; keywords override the variables."""
    from iam.settings import _sso_provider

    env = {
        "KIND": "saml",
        "NAME": name,
        "METADATA": str(files["idp"].metadata_path),
        "SP_CERT": str(files["sp_cert"]),
        "SP_KEY": str(files["sp_key"]),
        "STRATEGY": "pre-registered",
        "TRUST_EMAIL": "true",
        "IDP_INITIATED": "false",
        "ROLE_MAP": "{}",
    }
    env.update({k.upper(): v for k, v in extra.items()})
    for key, value in env.items():
        monkeypatch.setenv(f"IAM_SSO_{pid.upper()}_{key}", value)
    settings.IAM_SSO_PROVIDERS = {pid: _sso_provider(pid)}


# --- single logout over the HTTP-Redirect binding ------------------------------------

RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"


def redirect_url(endpoint: str, field: str, xml: bytes, relay_state: str, key_pem: bytes) -> str:
    """`endpoint?SAMLRequest|SAMLResponse=…&RelayState=…&SigAlg=…&Signature=…`
    as an IdP sends it (SAML Bindings §3.4.4.1), signed with `key_pem`."""
    from urllib.parse import quote

    from cryptography.hazmat.primitives.asymmetric import padding

    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    message = base64.b64encode(compressor.compress(xml) + compressor.flush()).decode()
    parts = [f"{field}={quote(message, safe='')}"]
    if relay_state:
        parts.append(f"RelayState={quote(relay_state, safe='')}")
    parts.append(f"SigAlg={quote(RSA_SHA256, safe='')}")
    key = serialization.load_pem_private_key(key_pem, password=None)
    signature = key.sign("&".join(parts).encode(), padding.PKCS1v15(), hashes.SHA256())
    parts.append(f"Signature={quote(base64.b64encode(signature).decode(), safe='')}")
    return f"{endpoint}?{'&'.join(parts)}"


def read_redirect(location: str) -> tuple:
    """(the message's root element, RelayState) of a redirect-binding URL."""
    query = parse_qs(urlsplit(location).query)
    field = "SAMLRequest" if "SAMLRequest" in query else "SAMLResponse"
    xml = zlib.decompress(base64.b64decode(query[field][0]), -15)
    root = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True))
    return root, query.get("RelayState", [""])[0]


def redirect_signed_by(location: str, cert_pem: bytes) -> bool:
    """The redirect's signature, checked as the receiving side does."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import padding

    raw = dict(pair.split("=", 1) for pair in urlsplit(location).query.split("&"))
    field = "SAMLRequest" if "SAMLRequest" in raw else "SAMLResponse"
    signed = f"{field}={raw[field]}"
    if "RelayState" in raw:
        signed += f"&RelayState={raw['RelayState']}"
    signed += f"&SigAlg={raw['SigAlg']}"
    signature = base64.b64decode(parse_qs(f"s={raw['Signature']}")["s"][0])
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        cert.public_key().verify(signature, signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def logout_request(
    idp: HostileIdP,
    *,
    name_id: str,
    destination: str,
    session_indexes=(),
    shift: int = 0,
    message_id: str | None = None,
) -> tuple[str, bytes]:
    """(its ID, the XML) of the IdP's LogoutRequest."""
    message_id = message_id or _id()
    root = etree.Element(f"{{{SAMLP}}}LogoutRequest", nsmap={"samlp": SAMLP, "saml": SAML})
    issued = _instant(datetime.now(UTC) + timedelta(seconds=shift))
    root.attrib.update(
        {"ID": message_id, "Version": "2.0", "IssueInstant": issued, "Destination": destination}
    )
    _sub(root, SAML, "Issuer", idp.entity_id)
    _sub(root, SAML, "NameID", name_id, Format=EMAIL_FORMAT)
    for index in session_indexes:
        _sub(root, SAMLP, "SessionIndex", index)
    return message_id, etree.tostring(root)


def logout_response(idp: HostileIdP, *, in_response_to: str, destination: str, status=SUCCESS):
    """The IdP's LogoutResponse (XML) to our LogoutRequest."""
    root = etree.Element(f"{{{SAMLP}}}LogoutResponse", nsmap={"samlp": SAMLP, "saml": SAML})
    root.attrib.update(
        {
            "ID": _id(),
            "Version": "2.0",
            "IssueInstant": _instant(datetime.now(UTC)),
            "Destination": destination,
            "InResponseTo": in_response_to,
        }
    )
    _sub(root, SAML, "Issuer", idp.entity_id)
    _sub(_sub(root, SAMLP, "Status"), SAMLP, "StatusCode", Value=status)
    return etree.tostring(root)
