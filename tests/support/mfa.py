"""Authenticator-app codes (RFC 6238) and turning the app on through the pages."""

import base64
import hashlib
import hmac
import re
import struct
import time


def totp(secret: str, at: float | None = None, step: int = 0) -> str:
    """RFC 6238, SHA-1, 6 digits, 30 s: what every authenticator app shows."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    counter = int((at or time.time()) // 30) + step
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def activate_totp(client) -> str:
    page = client.get("/2fa/totp/activate/")
    assert page.status_code == 200, page
    secret = re.search(r'id="authenticator_secret"[^>]*>([A-Z2-7]+)<', page.content.decode()).group(
        1
    )
    # The next window's code (accepted: tolerance 1): a later login's code of
    # this or the previous window can then never be this used-up one.
    response = client.post("/2fa/totp/activate/", {"code": totp(secret, step=1)})
    assert response.status_code == 302, response.content.decode()[:2000]
    return secret
