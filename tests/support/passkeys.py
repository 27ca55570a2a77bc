"""A software security key registered through the account page, as a browser would."""

import json

from allauth.mfa.models import Authenticator

from tests.webauthn_soft import SoftPasskey, js_data

# WebAuthn needs a secure origin: https, or http on localhost (python-fido2).
HOST = "localhost"


def add_key(client, key: SoftPasskey, *, passwordless: bool = True, name: str = "Laptop"):
    """Register `key` on the MFA page as the logged-in user."""
    page = client.get("/2fa/webauthn/add/")
    assert page.status_code == 200
    credential = key.create(js_data(page.content.decode())["creation_options"])
    data = {"name": name, "credential": json.dumps(credential)}
    if passwordless:
        data["passwordless"] = "on"
    response = client.post("/2fa/webauthn/add/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    return Authenticator.objects.filter(type="webauthn").latest("pk")
