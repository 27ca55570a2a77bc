"""Our side as a SAML service provider: its entity id and endpoints, its
signing key and certificate (IAM_SSO_<ID>_SP_KEY / _SP_CERT, PEM files),
the messages it sends, and its metadata document."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.urls import reverse
from lxml import etree

from sso.saml.xml import BINDING_POST, BINDING_REDIRECT, DS, MD, SAML, SAMLP, q, stamp

NAMEID_FORMATS = (
    "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
    "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
)


class UnusableKey(ValueError):
    """Our key or certificate cannot be used; the message says why."""


@cache
def _load(cert_path: str, key_path: str, _mtimes: tuple) -> tuple:
    try:
        cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    except OSError:
        raise UnusableKey("SP_CERT cannot be read") from None
    except ValueError:
        raise UnusableKey("SP_CERT is not a PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=None)
    except OSError:
        raise UnusableKey("SP_KEY cannot be read") from None
    except (ValueError, TypeError):
        raise UnusableKey("SP_KEY is not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
        raise UnusableKey("SP_KEY must be an RSA key of at least 2048 bits")
    if key.public_key().public_numbers() != cert.public_key().public_numbers():
        raise UnusableKey("SP_KEY does not belong to SP_CERT")
    return key, cert


def key_and_cert(provider) -> tuple:
    """(private key, certificate); UnusableKey when either is missing or wrong."""
    if not provider.sp_cert or not provider.sp_key:
        raise UnusableKey("SP_CERT and SP_KEY are required for kind saml")
    mtimes = tuple(_mtime(p) for p in (provider.sp_cert, provider.sp_key))
    return _load(provider.sp_cert, provider.sp_key, mtimes)


def _mtime(path: str) -> float:
    try:
        return Path(path).stat().st_mtime
    except OSError:
        return 0.0


def new_id() -> str:
    """A message id: an xs:ID starts with a letter or underscore."""
    return "_" + secrets.token_hex(20)


def acs_url(request, provider) -> str:
    return request.build_absolute_uri(reverse("sso:saml_acs", kwargs={"provider_id": provider.id}))


def slo_url(request, provider) -> str:
    return request.build_absolute_uri(reverse("sso:saml_slo", kwargs={"provider_id": provider.id}))


def entity_id(request, provider) -> str:
    """IAM_SSO_<ID>_ENTITY_ID, else the URL of our metadata (the usual choice)."""
    if provider.entity_id:
        return provider.entity_id
    path = reverse("sso:saml_metadata", kwargs={"provider_id": provider.id})
    return request.build_absolute_uri(path)


def _now() -> str:
    return stamp(datetime.now(UTC))


def authn_request(
    request, provider, *, request_id: str, destination: str, force: bool = False
) -> bytes:
    root = etree.Element(q(SAMLP, "AuthnRequest"), nsmap={"samlp": SAMLP, "saml": SAML})
    root.set("ID", request_id)
    root.set("Version", "2.0")
    root.set("IssueInstant", _now())
    root.set("Destination", destination)
    root.set("AssertionConsumerServiceURL", acs_url(request, provider))
    root.set("ProtocolBinding", BINDING_POST)
    if force:
        # SAML Core §3.4.1: the IdP must authenticate the person anew, not
        # rely on its live session (the "Confirm it's you" of a sensitive action).
        root.set("ForceAuthn", "true")
    etree.SubElement(root, q(SAML, "Issuer")).text = entity_id(request, provider)
    etree.SubElement(root, q(SAMLP, "NameIDPolicy")).set("AllowCreate", "true")
    return etree.tostring(root)


def logout_request(
    request, provider, *, request_id: str, destination: str, name_id: dict, session_index: str
) -> bytes:
    root = etree.Element(q(SAMLP, "LogoutRequest"), nsmap={"samlp": SAMLP, "saml": SAML})
    root.set("ID", request_id)
    root.set("Version", "2.0")
    root.set("IssueInstant", _now())
    root.set("Destination", destination)
    etree.SubElement(root, q(SAML, "Issuer")).text = entity_id(request, provider)
    element = etree.SubElement(root, q(SAML, "NameID"))
    element.text = name_id["value"]
    for attribute, key in (
        ("Format", "format"),
        ("NameQualifier", "name_qualifier"),
        ("SPNameQualifier", "sp_name_qualifier"),
    ):
        if name_id.get(key):
            element.set(attribute, name_id[key])
    if session_index:
        etree.SubElement(root, q(SAMLP, "SessionIndex")).text = session_index
    return etree.tostring(root)


def logout_response(
    request, provider, *, in_response_to: str, destination: str, success: bool = True
) -> bytes:
    root = etree.Element(q(SAMLP, "LogoutResponse"), nsmap={"samlp": SAMLP, "saml": SAML})
    root.set("ID", new_id())
    root.set("Version", "2.0")
    root.set("IssueInstant", _now())
    root.set("Destination", destination)
    root.set("InResponseTo", in_response_to)
    etree.SubElement(root, q(SAML, "Issuer")).text = entity_id(request, provider)
    status = etree.SubElement(root, q(SAMLP, "Status"))
    code = "Success" if success else "Requester"
    etree.SubElement(status, q(SAMLP, "StatusCode")).set(
        "Value", f"urn:oasis:names:tc:SAML:2.0:status:{code}"
    )
    return etree.tostring(root)


def metadata(request, provider) -> bytes:
    """Our SP metadata: what an IdP administrator imports (AD FS relying
    party trust, Entra ID enterprise application, SimpleSAMLphp sp-remote)."""
    _key, cert = key_and_cert(provider)
    root = etree.Element(q(MD, "EntityDescriptor"), nsmap={"md": MD, "ds": DS})
    root.set("entityID", entity_id(request, provider))
    sp = etree.SubElement(root, q(MD, "SPSSODescriptor"))
    sp.set("AuthnRequestsSigned", "true")
    sp.set("WantAssertionsSigned", "true")
    sp.set("protocolSupportEnumeration", SAMLP)
    descriptor = etree.SubElement(sp, q(MD, "KeyDescriptor"))
    descriptor.set("use", "signing")
    info = etree.SubElement(descriptor, q(DS, "KeyInfo"))
    data = etree.SubElement(info, q(DS, "X509Data"))
    der = cert.public_bytes(serialization.Encoding.DER)
    etree.SubElement(data, q(DS, "X509Certificate")).text = base64.b64encode(der).decode()
    slo = etree.SubElement(sp, q(MD, "SingleLogoutService"))
    slo.set("Binding", BINDING_REDIRECT)
    slo.set("Location", slo_url(request, provider))
    for name_format in NAMEID_FORMATS:
        etree.SubElement(sp, q(MD, "NameIDFormat")).text = name_format
    acs = etree.SubElement(sp, q(MD, "AssertionConsumerService"))
    acs.set("Binding", BINDING_POST)
    acs.set("Location", acs_url(request, provider))
    acs.set("index", "0")
    acs.set("isDefault", "true")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
