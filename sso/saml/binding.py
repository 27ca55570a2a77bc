"""The HTTP-Redirect binding (SAML Bindings §3.4): a message travels
deflated and base64-encoded in the query string, and the signature covers
the query string itself, not the XML.

We sign what we send with our key (RSA-SHA256). What the identity provider
sends is checked against the certificates of its metadata, over the query
string exactly as it arrived (re-encoding it would differ from the
sender's encoding; AD FS encodes in lower case). RSA with SHA-256 or
stronger only: no SHA-1.
"""

from __future__ import annotations

import base64
import zlib
from urllib.parse import quote, unquote_plus

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import load_der_x509_certificate

RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
ALGORITHMS = {
    RSA_SHA256: hashes.SHA256,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384": hashes.SHA384,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512": hashes.SHA512,
}
MAX_INFLATED = 256 * 1024  # bytes of XML a redirect may carry


def encode(xml: bytes) -> str:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return base64.b64encode(compressor.compress(xml) + compressor.flush()).decode()


def decode(value: str) -> bytes:
    """A redirect-binding message's XML; ValueError when it is not one (or
    inflates beyond MAX_INFLATED: a deflate bomb)."""
    raw = base64.b64decode(value, validate=False)
    inflater = zlib.decompressobj(-15)
    xml = inflater.decompress(raw, MAX_INFLATED)
    if inflater.unconsumed_tail:
        raise ValueError("message too large")
    return xml


def signed_query(field: str, message: str, relay_state: str, key) -> str:
    """`SAMLRequest=…&RelayState=…&SigAlg=…&Signature=…`, signed with `key`."""
    parts = [f"{field}={quote(message, safe='')}"]
    if relay_state:
        parts.append(f"RelayState={quote(relay_state, safe='')}")
    parts.append(f"SigAlg={quote(RSA_SHA256, safe='')}")
    signed = "&".join(parts).encode()
    signature = key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
    parts.append(f"Signature={quote(base64.b64encode(signature).decode(), safe='')}")
    return "&".join(parts)


def verify_query(query_string: str, field: str, certs: list[str]) -> bool:
    """True when the query's Signature over `field`, RelayState and SigAlg
    (as they arrived) verifies with one of the metadata's certificates."""
    raw = {}
    for pair in query_string.split("&"):
        name, _, value = pair.partition("=")
        if name in raw:
            return False  # a field twice: which one was signed?
        raw[name] = value
    if field not in raw or "SigAlg" not in raw or "Signature" not in raw:
        return False
    algorithm = ALGORITHMS.get(unquote_plus(raw["SigAlg"]))
    if algorithm is None:
        return False
    signed = f"{field}={raw[field]}"
    if "RelayState" in raw:
        signed += f"&RelayState={raw['RelayState']}"
    signed += f"&SigAlg={raw['SigAlg']}"
    try:
        signature = base64.b64decode(unquote_plus(raw["Signature"]), validate=False)
    except ValueError:
        return False
    for body in certs:
        public_key = load_der_x509_certificate(base64.b64decode(body)).public_key()
        try:
            if not isinstance(public_key, rsa.RSAPublicKey):
                continue
            public_key.verify(signature, signed.encode(), padding.PKCS1v15(), algorithm())
        except InvalidSignature:
            continue
        return True
    return False
