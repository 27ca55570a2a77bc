"""Single logout over the HTTP-Redirect binding.

Ours first (SP-initiated): logging out here sends the browser on to the
IdP's SingleLogoutService with a LogoutRequest signed with our key, naming
the NameID and SessionIndex of this session's login; the IdP answers at our
SLO endpoint with a LogoutResponse and our RelayState (sso.logout's signed
state), and the login page says "logged out, also at <NAME>".

The IdP's (IdP-initiated): a LogoutRequest arrives at our SLO endpoint,
signed with a certificate of its metadata; the sessions of that NameID (and
SessionIndex, when named) end on every app server (sso.sessions.end), and the
browser goes back to the IdP with our signed LogoutResponse.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.core.cache import cache

from sso.saml import binding, idp, sp
from sso.saml.response import CLOCK_SKEW
from sso.saml.xml import NS, SAMLP, SUCCESS, Forbidden, instant, parse_untrusted, q, text

MESSAGE_TTL = timedelta(minutes=10)  # how old an IdP's LogoutRequest may be


def request_url(request, provider, extra: dict, state: str) -> str | None:
    """The IdP's logout URL for this session, or None when its metadata
    names no SingleLogoutService (or the session kept no NameID)."""
    found = idp.idp(provider)
    name_id = extra.get("name_id") or {}
    if not found["slo_url"] or not name_id.get("value"):
        return None
    key, _cert = provider.signing_key()
    xml = sp.logout_request(
        request,
        provider,
        request_id=sp.new_id(),
        destination=found["slo_url"],
        name_id=name_id,
        session_index=extra.get("sid") or "",
    )
    query = binding.signed_query("SAMLRequest", binding.encode(xml), state, key)
    endpoint = found["slo_url"]
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


@dataclass(frozen=True)
class Incoming:
    """A verified logout message from the IdP."""

    kind: str  # "request" or "response"
    message_id: str = ""
    name_id: str = ""
    session_indexes: tuple[str, ...] = ()
    success: bool = False


class Refused(ValueError):
    """Not a logout message from this IdP; the text is the audit reason."""


def read(request, provider) -> Incoming:
    """The LogoutRequest or LogoutResponse in this redirect.

    A request ends sessions, so it must be signed (over the query string as
    it arrived) with a certificate of the metadata, name the IdP as issuer
    and us as destination: Refused otherwise. A response only decides
    whether the login page says "logged out, also at <NAME>": one that is
    not signed, or not a success, is no refusal, just no such notice (Entra
    ID names another issuer in it than in its metadata)."""
    field = "SAMLRequest" if "SAMLRequest" in request.GET else "SAMLResponse"
    value = request.GET.get(field)
    if not value:
        raise Refused("saml_malformed")
    found = idp.idp(provider)
    signed = binding.verify_query(request.META.get("QUERY_STRING", ""), field, found["certs"])
    if field == "SAMLResponse":
        return Incoming(kind="response", success=signed and _is_success(value))
    if not signed:
        raise Refused("saml_signature")
    try:
        root = parse_untrusted(binding.decode(value))
    except Forbidden:
        raise Refused("saml_xml_forbidden") from None
    except ValueError:
        raise Refused("saml_malformed") from None
    if text(root.find("saml:Issuer", NS)) != found["entity_id"]:
        raise Refused("saml_issuer")
    # SAML Bindings §3.4.5.2: a signed message names where it is going.
    if root.get("Destination") != sp.slo_url(request, provider):
        raise Refused("saml_destination")
    if root.tag != q(SAMLP, "LogoutRequest") or not root.get("ID"):
        raise Refused("saml_malformed")
    _fresh_and_once(provider, root)
    name_id = text(root.find("saml:NameID", NS))
    if not name_id:
        raise Refused("saml_malformed")
    indexes = tuple(text(e) for e in root.findall("samlp:SessionIndex", NS) if text(e))
    return Incoming(
        kind="request", message_id=root.get("ID"), name_id=name_id, session_indexes=indexes
    )


def _is_success(value: str) -> bool:
    try:
        root = parse_untrusted(binding.decode(value))
    except ValueError:  # Forbidden too
        return False
    status = root.find("samlp:Status/samlp:StatusCode", NS)
    is_response = root.tag == q(SAMLP, "LogoutResponse")
    return is_response and status is not None and status.get("Value") == SUCCESS


def _fresh_and_once(provider, root) -> None:
    """A LogoutRequest counts within MESSAGE_TTL of its IssueInstant (and
    before its NotOnOrAfter), once: a copy from a log or a proxy cannot log
    the person out again later."""
    now = datetime.now(UTC)
    issued = instant(root.get("IssueInstant"))
    if issued is None or not now - MESSAGE_TTL - CLOCK_SKEW <= issued <= now + CLOCK_SKEW:
        raise Refused("saml_expired")
    until = instant(root.get("NotOnOrAfter"))
    if until is not None and until <= now - CLOCK_SKEW:
        raise Refused("saml_expired")
    digest = hashlib.sha256(root.get("ID").encode()).hexdigest()
    ttl = int((MESSAGE_TTL + 2 * CLOCK_SKEW).total_seconds())
    if not cache.add(f"sso:saml-logout:{provider.id}:{digest}", 1, ttl):
        raise Refused("saml_replay")


def response_url(request, provider, incoming: Incoming, relay_state: str) -> str | None:
    """Back to the IdP with our signed LogoutResponse to its request."""
    found = idp.idp(provider)
    endpoint = found["slo_response_url"]
    if not endpoint:
        return None
    key, _cert = provider.signing_key()
    xml = sp.logout_response(
        request, provider, in_response_to=incoming.message_id, destination=endpoint
    )
    query = binding.signed_query("SAMLResponse", binding.encode(xml), relay_state, key)
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"
