"""Chromium's virtual authenticator (CDP WebAuthn) for the browser tests: a
key with user verification that always matches, as a laptop ("internal"),
a phone or a USB key ("usb") would offer."""


def virtual_authenticator(page, transport: str = "internal", cdp=None):
    """Adds one authenticator to the page's browser; returns (cdp session, its id)."""
    if cdp is None:
        cdp = page.context.new_cdp_session(page)
        cdp.send("WebAuthn.enable")
    options = {"protocol": "ctap2", "transport": transport, "hasResidentKey": True}
    options |= {"hasUserVerification": True, "isUserVerified": True}
    found = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})
    return cdp, found["authenticatorId"]
