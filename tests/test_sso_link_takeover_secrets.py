"""SSO link page, "I don't know its password": the API client secrets the
account's previous holder saw.

A narrow admin (users:create and api-clients:*) pre-registers the future IT
admin's address with an initial password and, logged in as that account,
creates a client-credentials client: the account holds its secret. At the
owner's first SSO login the owner takes the account over (every local
credential removed, sessions and tokens ended: "whoever held those is
out"), and ROLE_MAP makes it root. The secret the squatter kept must not
mint tokens capped by the account's new rights: "a secret never does more
than the people who have seen it could do", and the person who has seen
this one is out.
"""

import pytest
from django.test import Client as Http

from accounts.models import AuditEvent, User
from api.models import Client
from tests.api_support import bearer, client_token
from tests.conftest import login
from tests.factories import PASSWORD, GroupFactory, RoleFactory, RuleFactory, UserFactory
from tests.support.sso import CLAIMS, OWNER

pytestmark = pytest.mark.django_db


def authorize_url(client_id, *, redirect_uri, scope) -> str:
    """An authorization request with PKCE, as the squatter's client sends it."""
    import base64
    import hashlib
    from urllib.parse import urlencode

    challenge = base64.urlsafe_b64encode(hashlib.sha256(b"v" * 64).digest()).rstrip(b"=")
    query = {"response_type": "code", "client_id": client_id, "scope": scope, "state": "s1",
             "code_challenge": challenge.decode(), "code_challenge_method": "S256",
             "redirect_uri": redirect_uri}  # fmt: skip
    return "/oauth/authorize/?" + urlencode(query)


def test_a_takeover_ends_the_secrets_the_previous_holder_saw(role_map):
    role = RoleFactory()
    for pattern in ("backoffice:api-clients:*", "backoffice:users:view"):
        RuleFactory(role=role, pattern=pattern)
    integrators = GroupFactory(name="integrators", roles=[role])
    # The squatted account, with an initial password the squatter knows.
    squatted = UserFactory(email=OWNER, groups=[integrators])

    # Logged in as that account, the squatter adds a client on the screen:
    # the account holds its secret. Its service account reads users (given
    # the squatted account's own group, within its rights).
    squatter = Http()
    assert login(squatter, OWNER, PASSWORD).status_code == 302
    page = squatter.post(
        "/api-clients/add/",
        {"name": "Reports", "grant": "client_credentials", "scopes": "read write"},
    )
    assert page.status_code == 200, page.content.decode()[:2000]
    secret = page.content.decode().split('data-testid="client-secret">')[1].split("<")[0]
    client = Client.objects.get(name="Reports")
    assert client.secret_holder_id == squatted.pk
    client.account.groups.set([integrators])
    kept = client_token(Http(), client, secret).json()["access_token"]
    assert Http().get("/api/v1/users", **bearer(kept)).status_code == 200

    # The owner's first SSO login: "I don't know its password" — root by ROLE_MAP.
    owner = Http()
    assert role_map.sso_login(owner, CLAIMS)["Location"] == "/sso/link/"
    assert owner.post("/sso/link/takeover/").status_code == 302
    assert User.objects.get(pk=squatted.pk).groups.filter(name="root").exists()

    # The squatter is out: the token they kept and the secret they saw end.
    assert Http().get("/api/v1/users", **bearer(kept)).status_code == 401
    refused = client_token(Http(), client, secret)
    assert refused.status_code in (400, 401), refused.content
    assert refused.json()["error"] == "unauthorized_client"
    assert AuditEvent.objects.filter(action="api.token.refused").exists()
    # The client page says the secret needs replacing (nobody holds it).
    page = owner.get(f"/api-clients/{client.pk}/")
    assert page.status_code == 200


def test_a_takeover_forgets_the_approvals_the_previous_holder_gave(role_map):
    """The squatter approved their own client ("Evil", redirecting to their
    host) as the squatted account. After the owner's takeover (root by
    ROLE_MAP), a link to that client's authorization request must not send
    the owner's code to the squatter's host without asking the owner."""
    import re
    from urllib.parse import urlsplit

    from tests.api_support import make_client

    evil, _secret = make_client(
        "authorization_code",
        redirect_uris=["https://evil.example/cb"],
        scopes=["read", "write"],
        name="Evil",
    )
    UserFactory(email=OWNER)
    squatter = Http()
    assert login(squatter, OWNER, PASSWORD).status_code == 302
    url = authorize_url(evil.client_id, redirect_uri="https://evil.example/cb", scope="read write")
    page = squatter.get(url)
    assert page.status_code == 200, page
    fields = dict(re.findall(r'name="([a-z_]+)"[^>]*value="([^"]*)"', page.content.decode()))
    fields["allow"] = "Authorize"
    given = squatter.post(url, fields)
    assert given.status_code == 302 and given["Location"].startswith("https://evil.example/cb")

    owner = Http()
    assert role_map.sso_login(owner, CLAIMS)["Location"] == "/sso/link/"
    assert owner.post("/sso/link/takeover/").status_code == 302
    # The owner follows the squatter's link: asked first, no code sent away.
    answer = owner.get(url)
    sent_away = answer.status_code == 302 and urlsplit(answer["Location"]).netloc == "evil.example"
    assert not sent_away, answer["Location"]
    assert answer.status_code == 200  # the approval page
