"""A SAML identity provider for the benchmarks, happy path only: its key
and certificate, a metadata file, and `response()`, a samlp:Response to one
of our AuthnRequests with an assertion signed as AD FS signs it (enveloped,
rsa-sha256, exc-c14n, one reference to the assertion's ID).

Nothing listens: the metadata names a SingleSignOnService that is never
called, since the benchmark reads the AuthnRequest from our redirect and
posts the answer itself. The tests have their own hostile IdP
(tests/support/saml.py); benchmarks must not import tests.
"""

from __future__ import annotations

import base64
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
from signxml import XMLSigner, methods

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
ENTITY_ID = "https://idp.bench.example/adfs/services/trust"
SSO_URL = "https://idp.bench.example/adfs/ls/"
ROLE = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
EMAIL = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"


def key_and_cert(directory: Path, cn: str) -> tuple[Path, Path, bytes, bytes]:
    """An RSA-2048 key and a self-signed SHA-256 certificate for `cn`, as
    PEM files in `directory`: (key path, cert path, key PEM, cert PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_path, cert_path = directory / f"{cn}.key", directory / f"{cn}.crt"
    key_path.write_bytes(key_pem)
    cert_path.write_bytes(cert_pem)
    return key_path, cert_path, key_pem, cert_pem


@dataclass(frozen=True)
class AuthnRequest:
    """What an IdP reads from our AuthnRequest to answer it."""

    id: str
    acs_url: str
    issuer: str


def read_request(location: str) -> AuthnRequest:
    """The AuthnRequest in the SAMLRequest of our redirect to the IdP
    (HTTP-Redirect binding: deflate, then base64)."""
    encoded = parse_qs(urlsplit(location).query)["SAMLRequest"][0]
    root = etree.fromstring(zlib.decompress(base64.b64decode(encoded), -15))
    return AuthnRequest(
        id=root.get("ID"),
        acs_url=root.get("AssertionConsumerServiceURL"),
        issuer=root.findtext(f"{{{SAML}}}Issuer"),
    )


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class SamlIdP:
    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        _path, _cert, self.key_pem, self.cert_pem = key_and_cert(directory, "idp.bench.example")
        self.sp_key, self.sp_cert, _key, _pem = key_and_cert(directory, "iam.bench.example")
        self.metadata = directory / "idp-metadata.xml"
        self.metadata.write_bytes(self._metadata())

    def env(self, pid: str = "BENCH") -> dict[str, str]:
        """The settings that make this IdP a provider of the app."""
        prefix = f"IAM_SSO_{pid}_"
        return {
            "IAM_SSO_PROVIDERS": pid.lower(),
            prefix + "KIND": "saml",
            prefix + "NAME": "Bench AD FS",
            prefix + "METADATA": str(self.metadata),
            prefix + "SP_CERT": str(self.sp_cert),
            prefix + "SP_KEY": str(self.sp_key),
            prefix + "ROLE_ATTRIBUTE": ROLE,
            prefix + "TRUST_EMAIL": "true",
        }

    def _metadata(self) -> bytes:
        body = "".join(
            line for line in self.cert_pem.decode().splitlines() if not line.startswith("-----")
        )
        root = etree.Element(f"{{{MD}}}EntityDescriptor", nsmap={"md": MD, "ds": DS})
        root.set("entityID", ENTITY_ID)
        idp = etree.SubElement(root, f"{{{MD}}}IDPSSODescriptor")
        idp.set("protocolSupportEnumeration", SAMLP)
        descriptor = etree.SubElement(idp, f"{{{MD}}}KeyDescriptor", use="signing")
        info = etree.SubElement(descriptor, f"{{{DS}}}KeyInfo")
        data = etree.SubElement(info, f"{{{DS}}}X509Data")
        etree.SubElement(data, f"{{{DS}}}X509Certificate").text = body
        for service in ("SingleLogoutService", "SingleSignOnService"):
            etree.SubElement(idp, f"{{{MD}}}{service}", Binding=REDIRECT, Location=SSO_URL)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    def response(
        self,
        request: AuthnRequest,
        name_id: str,
        attributes: list[tuple[str, list[str]]],
        *,
        extensions: bool = False,
    ) -> etree._Element:
        """A samlp:Response answering `request` for `name_id`, its assertion
        signed; with `extensions`, an empty samlp:Extensions to fill."""
        now = datetime.now(UTC)
        later = stamp(now + timedelta(minutes=5))
        root = etree.Element(
            f"{{{SAMLP}}}Response",
            nsmap={"samlp": SAMLP, "saml": SAML},
            ID=_id(),
            Version="2.0",
            IssueInstant=stamp(now),
            Destination=request.acs_url,
            InResponseTo=request.id,
        )
        etree.SubElement(root, f"{{{SAML}}}Issuer").text = ENTITY_ID
        if extensions:
            etree.SubElement(root, f"{{{SAMLP}}}Extensions")
        status = etree.SubElement(root, f"{{{SAMLP}}}Status")
        etree.SubElement(status, f"{{{SAMLP}}}StatusCode", Value=SUCCESS)
        assertion = etree.SubElement(
            root, f"{{{SAML}}}Assertion", ID=_id(), Version="2.0", IssueInstant=stamp(now)
        )
        etree.SubElement(assertion, f"{{{SAML}}}Issuer").text = ENTITY_ID
        subject = etree.SubElement(assertion, f"{{{SAML}}}Subject")
        name = etree.SubElement(subject, f"{{{SAML}}}NameID")
        name.set("Format", "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent")
        name.text = name_id
        confirmation = etree.SubElement(subject, f"{{{SAML}}}SubjectConfirmation", Method=BEARER)
        etree.SubElement(
            confirmation,
            f"{{{SAML}}}SubjectConfirmationData",
            InResponseTo=request.id,
            NotOnOrAfter=later,
            Recipient=request.acs_url,
        )
        conditions = etree.SubElement(
            assertion, f"{{{SAML}}}Conditions", NotBefore=stamp(now), NotOnOrAfter=later
        )
        audience = etree.SubElement(conditions, f"{{{SAML}}}AudienceRestriction")
        etree.SubElement(audience, f"{{{SAML}}}Audience").text = request.issuer
        statement = etree.SubElement(
            assertion, f"{{{SAML}}}AuthnStatement", AuthnInstant=stamp(now), SessionIndex=_id()
        )
        context = etree.SubElement(statement, f"{{{SAML}}}AuthnContext")
        etree.SubElement(
            context, f"{{{SAML}}}AuthnContextClassRef"
        ).text = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
        values = etree.SubElement(assertion, f"{{{SAML}}}AttributeStatement")
        for attribute_name, attribute_values in attributes:
            attribute = etree.SubElement(values, f"{{{SAML}}}Attribute", Name=attribute_name)
            for value in attribute_values:
                etree.SubElement(attribute, f"{{{SAML}}}AttributeValue").text = value
        signed = XMLSigner(
            method=methods.enveloped,
            signature_algorithm="rsa-sha256",
            digest_algorithm="sha256",
            c14n_algorithm=EXC_C14N,
        ).sign(
            assertion,
            key=self.key_pem,
            cert=self.cert_pem.decode(),
            reference_uri=assertion.get("ID"),
            id_attribute="ID",
            always_add_key_value=False,
        )
        # SAML's schema wants the signature right after the Issuer.
        signature = signed.find(f"{{{DS}}}Signature")
        signed.remove(signature)
        signed.insert(1, signature)
        root.replace(assertion, signed)
        return root


def _id() -> str:
    return "_" + secrets.token_hex(16)


def post_value(document: bytes) -> str:
    """The SAMLResponse form field of the HTTP-POST binding."""
    return base64.b64encode(document).decode()
