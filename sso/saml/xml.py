"""Untrusted XML in, and the little XML we write out.

A SAML message comes from a browser, so from anyone: it is parsed with no
DTD, no entities, no network and no huge trees, and a document that holds a
DOCTYPE, a comment or a processing instruction is refused outright (no IdP
sends them; they are how XXE, entity bombs and the comment-in-NameID attack
get in).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from lxml import etree

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
NS = {"samlp": SAMLP, "saml": SAML, "md": MD, "ds": DS}

BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"

MAX_DOCUMENT = 512 * 1024  # bytes: a response with a few hundred attributes fits
_DOCTYPE = re.compile(rb"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST)", re.IGNORECASE)


class Forbidden(ValueError):
    """The document holds what no SAML message may (a DTD, a comment…)."""


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
    )


def parse_untrusted(data: bytes) -> etree._Element:
    """The root element of an untrusted document. Raises Forbidden for a DTD,
    entity, comment or processing instruction anywhere, ValueError when it is
    not well-formed XML."""
    if len(data) > MAX_DOCUMENT:
        raise ValueError("document too large")
    # Searched in UTF-16 and UTF-32 too (their ASCII is the byte and NULs):
    # there libxml2 stops at an entity bomb before the DTD checks below run.
    if _DOCTYPE.search(data) or _DOCTYPE.search(data.replace(b"\0", b"")):
        raise Forbidden("DTD")
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as error:
        raise ValueError("not XML") from error
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise Forbidden("DTD")
    for node in root.iter(etree.Comment, etree.ProcessingInstruction, etree.Entity):
        raise Forbidden(type(node).__name__)
    for sibling in (*root.itersiblings(preceding=True), *root.itersiblings()):
        raise Forbidden(type(sibling).__name__)
    return root


def q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


def text(element) -> str:
    """An element's whole text (never only the part before a child)."""
    if element is None:
        return ""
    return "".join(element.itertext()).strip()


def instant(value) -> datetime | None:
    """An xs:dateTime as SAML writes it (UTC, `Z`, optional fractions)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
