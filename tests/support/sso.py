"""Logging in through the in-process OpenID provider (tests/oidc_fake.py):
its settings, the round trip, the reason a failure was audited with."""

from accounts.models import AuditEvent

ADA = {
    "sub": "ada-sub-1",
    "email": "ada@shop.example",
    "email_verified": True,
    "given_name": "Ada",
    "family_name": "Lovelace",
}


def configure(settings, idp, **extra):
    settings.IAM_SSO_PROVIDERS = {"fake": idp.oidc_config(**extra)}


def start(client, pid="fake", **data):
    response = client.post(f"/sso/{pid}/login/", data)
    assert response.status_code == 302, response
    return response["Location"]


def sso_login(client, idp, claims, pid="fake", **data):
    """The whole round trip; returns the callback's response."""
    return idp.sso_login(client, claims, pid, **data)


def last_failure_reason() -> str:
    return AuditEvent.objects.filter(action="sso.failed").latest("id").details["reason"]


# The future IT admin of the linking tests: their address, and what the
# provider says of them at their first login (the role ROLE_MAP makes root).
OWNER = "it.admin@shop.example"
CLAIMS = {
    "sub": "it-admin-sub",
    "email": OWNER,
    "email_verified": True,
    "given_name": "Irene",
    "family_name": "Admin",
    "roles": ["it-admin"],
}
