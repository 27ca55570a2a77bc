"""An identity provider's answer to our sign-in request (a samlp:Response
through the HTTP-POST binding), checked, and read as claims.

Every check that fails raises SSOError with a reason code `saml_*` (the audit
trail's and the README's words). The order matters:
1. the document is parsed without DTDs or entities, and refused when it holds
   a DTD, comment or processing instruction;
2. it must be one samlp:Response holding exactly one saml:Assertion, a
   direct child, not encrypted, with a signature of its own (a signed
   response around an unsigned assertion is refused);
3. that signature must verify with a certificate from the IdP's metadata
   (never one the document brings), its one reference must be the assertion
   itself, and from then on only the signed copy signxml hands back is read:
   a second, unsigned assertion placed anywhere (XSW1–XSW8) is never looked at;
4. issuer, audience, recipient, destination, status and times are checked
   (CLOCK_SKEW either way), then InResponseTo is bound to a request this
   browser made (sso.saml.flow), and the assertion id is used once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from django.core.cache import cache
from django.utils.translation import gettext_noop
from signxml import SignatureConfiguration, XMLVerifier
from signxml.exceptions import InvalidInput, SignXMLException

from sso.errors import printable
from sso.saml.xml import DS, NS, SAML, SAMLP, SUCCESS, Forbidden, instant, parse_untrusted, q, text

CLOCK_SKEW = timedelta(seconds=90)
ROLES = "saml_roles"  # the claim holding ROLE_ATTRIBUTE's values
TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
EMAIL_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
# Attribute names that carry the person's address and names, as AD FS,
# Entra ID, Okta, Shibboleth (OIDs) and SimpleSAMLphp send them.
EMAIL_ATTRIBUTES = (
    "email",
    "mail",
    "emailaddress",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    "urn:oid:0.9.2342.19200300.100.1.3",
)
GIVEN_NAME_ATTRIBUTES = (
    "givenName",
    "given_name",
    "firstName",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
    "urn:oid:2.5.4.42",
)
FAMILY_NAME_ATTRIBUTES = (
    "sn",
    "surname",
    "family_name",
    "lastName",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
    "urn:oid:2.5.4.4",
)
NAME_ATTRIBUTES = (
    "displayName",
    "name",
    "http://schemas.microsoft.com/identity/claims/displayname",
    "urn:oid:2.16.840.1.113730.3.1.241",
)
# Where AD FS and Entra ID list how the person authenticated (as values).
METHODS_ATTRIBUTE = "http://schemas.microsoft.com/claims/authnmethodsreferences"
# AuthnContextClassRef values (or METHODS_ATTRIBUTE values) that say the IdP
# did multi-factor authentication.
MFA_CONTEXTS = (
    "https://refeds.org/profile/mfa",
    "http://schemas.microsoft.com/claims/multipleauthn",
    "http://schemas.microsoft.com/ws/2012/12/authmethod/multifactor",
)


@dataclass(frozen=True)
class Checked:
    """A response that passed every check but the binding to our request."""

    claims: dict
    in_response_to: str
    assertion_id: str
    not_on_or_after: datetime
    authn_instant: datetime | None


def _refuse(provider, reason: str, message: str, detail: str = ""):
    return provider.fail(message, reason, printable(detail, 200))


def decode_post(provider, value) -> bytes:
    if not isinstance(value, str) or not value:
        raise _refuse(provider, "saml_malformed", gettext_noop("the provider sent no answer."))
    try:
        return base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError):
        raise _refuse(
            provider, "saml_malformed", gettext_noop("the provider's answer is unreadable.")
        ) from None


def check(provider, idp: dict, data: bytes, *, acs_url: str, entity_id: str) -> Checked:
    """Steps 1–4 but the binding to our request (see the module's docstring)."""
    unreadable = gettext_noop("the provider's answer is unreadable.")
    try:
        root = parse_untrusted(data)
    except Forbidden as error:
        raise _refuse(
            provider,
            "saml_xml_forbidden",
            gettext_noop("the provider's answer holds XML that is not allowed."),
            str(error),
        ) from None
    except ValueError:
        raise _refuse(provider, "saml_malformed", unreadable) from None
    if root.tag != q(SAMLP, "Response"):
        raise _refuse(provider, "saml_malformed", unreadable, "not a samlp:Response")
    destination = root.get("Destination")
    if destination is not None and destination != acs_url:
        raise _refuse(
            provider,
            "saml_destination",
            gettext_noop("the answer was meant for another address."),
            destination,
        )
    status = root.find("samlp:Status/samlp:StatusCode", NS)
    if status is None or status.get("Value") != SUCCESS:
        said = status.get("Value", "") if status is not None else "none"
        inner = status.find("samlp:StatusCode", NS) if status is not None else None
        if inner is not None:
            said += " / " + inner.get("Value", "")
        raise _refuse(
            provider,
            "saml_status",
            gettext_noop("the provider did not sign you in."),
            said.rsplit(":", 1)[-1] if ":" in said else said,
        )
    if next(root.iter(q(SAML, "EncryptedAssertion")), None) is not None:
        raise _refuse(
            provider,
            "saml_encrypted",
            gettext_noop(
                "the provider sent an encrypted assertion, which is not supported: an "
                "administrator should switch assertion encryption off for this application."
            ),
        )
    assertions = list(root.iter(q(SAML, "Assertion")))
    if not assertions:
        raise _refuse(provider, "saml_malformed", unreadable, "no assertion")
    if len(assertions) != 1 or assertions[0].getparent() is not root:
        raise _refuse(
            provider,
            "saml_assertions",
            gettext_noop("the provider's answer holds more than one assertion."),
            f"{len(assertions)} assertions",
        )
    assertion = assertions[0]
    if assertion.find(q(DS, "Signature")) is None:
        raise _refuse(
            provider, "saml_unsigned", gettext_noop("the provider's assertion is not signed.")
        )
    signed = _verified(provider, idp, assertion)
    return _read(provider, idp, signed, root, acs_url=acs_url, entity_id=entity_id)


def _verified(provider, idp: dict, assertion):
    """The signed copy of the assertion (signxml's), once its own signature
    verifies with a certificate of the metadata and refers to it alone."""
    assertion_id = assertion.get("ID") or ""
    bad = gettext_noop("the provider's signature does not verify.")
    for cert in idp["certs"]:
        config = SignatureConfiguration(
            location="./", expect_references=1, verification_time=_within(cert)
        )
        try:
            result = XMLVerifier().verify(
                assertion, x509_cert=cert, expect_config=config, id_attribute="ID"
            )
        except (SignXMLException, InvalidInput, ValueError):
            continue
        signed = result.signed_xml
        reference = result.signature_xml.find("ds:SignedInfo/ds:Reference", NS)
        if (
            signed is None
            or signed.tag != q(SAML, "Assertion")
            or not assertion_id
            or signed.get("ID") != assertion_id
            or reference is None
            or reference.get("URI") != f"#{assertion_id}"
        ):
            raise _refuse(provider, "saml_signature", bad, "the signature covers something else")
        return signed
    raise _refuse(provider, "saml_signature", bad)


def _within(cert: str) -> datetime:
    """Now, or the nearest moment the certificate was valid: the metadata
    makes its key trusted, not the certificate's dates (SAML V2.0 Metadata
    Interoperability Profile §2.6.1; IdPs run on long-expired self-signed
    certificates), so signxml's check of those dates must not refuse it."""
    parsed = x509.load_der_x509_certificate(base64.b64decode(cert))
    now = datetime.now(UTC)
    return min(max(now, parsed.not_valid_before_utc), parsed.not_valid_after_utc)


def _read(provider, idp: dict, signed, root, *, acs_url: str, entity_id: str) -> Checked:
    now = datetime.now(UTC)
    issuer = text(signed.find("saml:Issuer", NS))
    if issuer != idp["entity_id"]:
        raise _refuse(
            provider,
            "saml_issuer",
            gettext_noop("the answer came from another provider."),
            issuer,
        )
    conditions = signed.find("saml:Conditions", NS)
    if conditions is None:
        raise _refuse(
            provider, "saml_audience", gettext_noop("the answer was meant for another service.")
        )
    not_before = instant(conditions.get("NotBefore"))
    if not_before is not None and not_before > now + CLOCK_SKEW:
        raise _refuse(
            provider,
            "saml_not_yet_valid",
            gettext_noop("the answer is not valid yet. Check the clocks of both servers."),
        )
    limits = [instant(conditions.get("NotOnOrAfter"))]
    # Each AudienceRestriction must name us (SAML core 2.5.1.4: the audiences
    # of one restriction are alternatives, several restrictions all apply).
    restrictions = [
        [text(a) for a in restriction.findall("saml:Audience", NS)]
        for restriction in conditions.findall("saml:AudienceRestriction", NS)
    ]
    audiences = [audience for restriction in restrictions for audience in restriction]
    if not restrictions or any(entity_id not in restriction for restriction in restrictions):
        raise _refuse(
            provider,
            "saml_audience",
            gettext_noop("the answer was meant for another service."),
            ", ".join(audiences)[:200],
        )
    subject = signed.find("saml:Subject", NS)
    name_id = subject.find("saml:NameID", NS) if subject is not None else None
    if name_id is None or not text(name_id):
        raise _refuse(provider, "saml_malformed", gettext_noop("the answer names nobody."))
    if name_id.get("Format") == TRANSIENT:
        raise _refuse(
            provider,
            "saml_transient_name_id",
            gettext_noop(
                "the provider sent a one-time (transient) name. An administrator should "
                "set its NameID format to persistent or email address."
            ),
        )
    confirmation = None
    for candidate in subject.findall("saml:SubjectConfirmation", NS):
        if candidate.get("Method") == BEARER:
            confirmation = candidate.find("saml:SubjectConfirmationData", NS)
            break
    if confirmation is None:
        raise _refuse(provider, "saml_malformed", gettext_noop("the answer cannot be confirmed."))
    if confirmation.get("Recipient") != acs_url:
        raise _refuse(
            provider,
            "saml_recipient",
            gettext_noop("the answer was meant for another address."),
            confirmation.get("Recipient") or "none",
        )
    limits.append(instant(confirmation.get("NotOnOrAfter")))
    limits = [limit for limit in limits if limit is not None]
    if not limits:
        raise _refuse(provider, "saml_expired", gettext_noop("the answer has no expiry."))
    expires = min(limits)
    if expires <= now - CLOCK_SKEW:
        raise _refuse(
            provider,
            "saml_expired",
            gettext_noop("the answer has expired. Please try again."),
        )
    in_response_to = confirmation.get("InResponseTo") or ""
    outer = root.get("InResponseTo")
    if outer is not None and outer != in_response_to:
        raise _refuse(
            provider,
            "saml_in_response_to",
            gettext_noop("the answer does not belong to a sign-in started in this browser."),
        )
    statement = signed.find("saml:AuthnStatement", NS)
    session_index = statement.get("SessionIndex", "") if statement is not None else ""
    authn_instant = instant(statement.get("AuthnInstant")) if statement is not None else None
    context = (
        text(statement.find("saml:AuthnContext/saml:AuthnContextClassRef", NS))
        if (statement is not None)
        else ""
    )
    attributes = _attributes(signed)
    claims = _claims(provider, issuer, name_id, attributes, session_index, context, authn_instant)
    return Checked(
        claims=claims,
        in_response_to=in_response_to,
        assertion_id=signed.get("ID"),
        not_on_or_after=expires,
        authn_instant=authn_instant,
    )


def _attributes(signed) -> dict[str, list[str]]:
    """Attribute Name → its string values. Never FriendlyName: SAML core
    §2.7.3.1 says it must not be relied on (an IdP may send any)."""
    found: dict[str, list[str]] = {}
    for attribute in signed.findall("saml:AttributeStatement/saml:Attribute", NS):
        values = [text(v) for v in attribute.findall("saml:AttributeValue", NS)]
        name = attribute.get("Name")
        if name:
            found.setdefault(name, []).extend(v for v in values if v)
    return found


def _one(attributes: dict, names) -> str:
    """The value of the first of `names` the assertion holds, when it holds
    one value (repeated or not); "" when it holds several different ones:
    which address is the person's is then not ours to guess."""
    for name in names:
        values = set(attributes.get(name, []))
        if values:
            return values.pop() if len(values) == 1 else ""
    return ""


def _claims(provider, issuer, name_id, attributes, session_index, context, authn_instant) -> dict:
    """The assertion in the shape the shared SSO services read (as OIDC
    claims): iss, sub, email, names, roles, sid, amr, auth_time."""
    subject = text(name_id)
    email = _one(attributes, EMAIL_ATTRIBUTES)
    if not email and name_id.get("Format") == EMAIL_FORMAT:
        email = subject
    claims = {
        "iss": issuer,
        "sub": subject,
        "email": email,
        "given_name": _one(attributes, GIVEN_NAME_ATTRIBUTES),
        "family_name": _one(attributes, FAMILY_NAME_ATTRIBUTES),
        "name": _one(attributes, NAME_ATTRIBUTES),
        # Under a key of its own, so no ROLE_ATTRIBUTE can stand in for
        # another claim (`sub`, `email`, `amr`).
        ROLES: attributes.get(provider.role_attribute, []),
        "sid": session_index,
        "saml_name_id": {
            "value": subject,
            "format": name_id.get("Format", ""),
            "name_qualifier": name_id.get("NameQualifier", ""),
            "sp_name_qualifier": name_id.get("SPNameQualifier", ""),
        },
    }
    if context in MFA_CONTEXTS or set(attributes.get(METHODS_ATTRIBUTE, [])) & set(MFA_CONTEXTS):
        claims["amr"] = ["mfa"]
    if authn_instant is not None:
        claims["auth_time"] = int(authn_instant.timestamp())
    return claims


def use_once(provider, checked: Checked) -> None:
    """An assertion id counts once, until the assertion expires (in the
    shared cache, so on every app server when the cache is Redis)."""
    digest = hashlib.sha256(checked.assertion_id.encode()).hexdigest()
    ttl = (checked.not_on_or_after - datetime.now(UTC) + CLOCK_SKEW).total_seconds()
    if not cache.add(f"sso:saml-assertion:{provider.id}:{digest}", 1, max(int(ttl) + 1, 1)):
        raise _refuse(
            provider,
            "saml_replay",
            gettext_noop("this answer was used already. Please log in again."),
        )
