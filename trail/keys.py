"""The seal key: IAM_AUDIT_SEAL_KEY, kept outside the database (an
attacker who can edit rows cannot make a seal). Unset, it is derived from
the secret key under a domain separator of its own, so it never equals a key
Django uses for something else. Seals store a key id, never the key, so
verifying with another key is reported as a key change, not as tampering."""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings

TAG_BYTES = 16  # per-event tag, truncated HMAC-SHA256 (128 bits)


def seal_key() -> bytes:
    configured = settings.IAM_AUDIT_SEAL_KEY
    if configured:
        return configured.encode()
    return hmac.new(
        settings.SECRET_KEY.encode(), b"iam.trail.audit-seal-key.v1", hashlib.sha256
    ).digest()


def keyring() -> dict[str, bytes]:
    """The keys verification accepts, by key id: the current one and the
    retired ones (IAM_AUDIT_SEAL_OLD_KEYS), so seals made before a key
    change still verify. Only the current key seals."""
    ring = {key_id(old.encode()): old.encode() for old in settings.IAM_AUDIT_SEAL_OLD_KEYS if old}
    current = seal_key()
    ring[key_id(current)] = current
    return ring


def key_id(key: bytes) -> str:
    """A fingerprint that names the key without revealing it."""
    return hmac.new(key, b"iam.trail.key-id", hashlib.sha256).hexdigest()[:16]


def event_tag(key: bytes, content: bytes) -> bytes:
    return hmac.new(key, b"event\x00" + content, hashlib.sha256).digest()[:TAG_BYTES]


def mac(key: bytes, message: bytes) -> str:
    return hmac.new(key, b"seal\x00" + message, hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
