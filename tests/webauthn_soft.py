"""A software passkey for the HTTP tests: what a browser and an authenticator
would send (WebAuthn's JSON), made with python-fido2's own data types and a
real P-256 key, so the server's checks (challenge, origin, RP id, signature,
user verification) run for real. The browser tests use Chromium's virtual
authenticator instead (tests/e2e/test_passkeys_browser.py)."""

from __future__ import annotations

import hashlib
import json
import os
import re

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fido2.cose import ES256
from fido2.utils import websafe_decode, websafe_encode
from fido2.webauthn import (
    AttestationObject,
    AttestedCredentialData,
    AuthenticatorData,
    CollectedClientData,
)

FLAG = AuthenticatorData.FLAG


def js_data(html: str) -> dict:
    """The options allauth puts in the page for its script."""
    match = re.search(r'<script id="js_data" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(match.group(1))


class SoftPasskey:
    def __init__(self, origin: str = "http://localhost", *, user_verified: bool = True):
        self.origin = origin
        self.rp_id = origin.split("://", 1)[1].split(":")[0]
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(16)
        self.user_handle: bytes | None = None
        self.counter = 0
        self.flags = FLAG.UP | (FLAG.UV if user_verified else 0)

    def _client_data(self, kind: str, challenge: str) -> CollectedClientData:
        return CollectedClientData.create(type=kind, challenge=challenge, origin=self.origin)

    def create(self, options: dict, *, resident: bool = True) -> dict:
        """navigator.credentials.create() for `options` (creation_options)."""
        public_key = options["publicKey"]
        self.user_handle = websafe_decode(public_key["user"]["id"])
        credential = AttestedCredentialData.create(
            b"\0" * 16,
            self.credential_id,
            ES256.from_cryptography_key(self.key.public_key()),
        )
        auth_data = AuthenticatorData.create(
            hashlib.sha256(self.rp_id.encode()).digest(), self.flags | FLAG.AT, 0, credential
        )
        attestation = AttestationObject.create("none", auth_data, {})
        client_data = self._client_data("webauthn.create", public_key["challenge"])
        return {
            "id": websafe_encode(self.credential_id),
            "rawId": websafe_encode(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": websafe_encode(client_data),
                "attestationObject": websafe_encode(attestation),
            },
            "clientExtensionResults": {"credProps": {"rk": resident}},
        }

    def get(self, options: dict) -> dict:
        """navigator.credentials.get() for `options` (request_options)."""
        self.counter += 1
        auth_data = AuthenticatorData.create(
            hashlib.sha256(self.rp_id.encode()).digest(), self.flags, self.counter
        )
        client_data = self._client_data("webauthn.get", options["publicKey"]["challenge"])
        signature = self.key.sign(auth_data + client_data.hash, ec.ECDSA(hashes.SHA256()))
        return {
            "id": websafe_encode(self.credential_id),
            "rawId": websafe_encode(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": websafe_encode(client_data),
                "authenticatorData": websafe_encode(auth_data),
                "signature": websafe_encode(signature),
                "userHandle": websafe_encode(self.user_handle or b""),
            },
            "clientExtensionResults": {},
        }
