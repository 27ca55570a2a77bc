"""Bearer tokens of provisioning clients: made once, kept as a hash."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.utils import timezone

from scim.models import Client

PREFIX = "scim_"
# A dummy row's hash, compared when the key is unknown, so an unknown key and
# a wrong secret take the same time.
_DUMMY = hashlib.sha256(b"no such client").hexdigest()


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token() -> tuple[str, str, str]:
    """(token, key, secret hash): the token is shown once, the rest kept."""
    key = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return f"{PREFIX}{key}.{secret}", key, _hash(secret)


def client_for(token: str) -> Client | None:
    """The live client this token belongs to, or None."""
    key, _, secret = token.removeprefix(PREFIX).partition(".")
    client = None
    if token.startswith(PREFIX) and len(key) == 16 and secret and len(secret) < 200:
        client = Client.objects.filter(key=key).first()
    expected = client.secret_hash if client is not None else _DUMMY
    matches = hmac.compare_digest(expected, _hash(secret))
    if client is None or not matches or client.revoked_at is not None:
        return None
    now = timezone.now()
    if client.last_used_at is None or (now - client.last_used_at).total_seconds() > 60:
        Client.objects.filter(pk=client.pk).update(last_used_at=now)
    return client
