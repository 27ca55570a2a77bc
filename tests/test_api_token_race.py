"""Two token requests at the same moment with the same authorization code or
the same refresh token, on PostgreSQL, through HTTP (two threads, two
database connections; a barrier releases them together).

- A code is redeemed once: exactly one of four requests gets tokens, the
  others `invalid_grant` (never a 500), and the code's tokens then die (RFC 6749
  §4.1.2: a code used twice revokes what it gave).
- A refresh token is rotated once: exactly one request wins; the other is a
  replay, so the whole family ends (the winner's new tokens too) and
  `api.token.replayed` is audited. Without the lock both passed validation
  before either had rotated, and both got tokens.
"""

import base64
import hashlib
import secrets
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection, connections
from django.test import Client as Http

from accounts.models import AuditEvent
from tests.api_support import TOKEN, basic, bearer, make_client
from tests.conftest import login
from tests.factories import PASSWORD, UserFactory

ROUNDS = 8
CODE_RACERS = 4  # one code, four requests at once
REDIRECT = "https://app.example/cb"

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="races need a server database (CI runs it)"
    ),
]


def _race(*requests) -> list:
    """Run the requests at once; their responses."""
    barrier = threading.Barrier(len(requests))
    responses = [None] * len(requests)

    def run(index, request):
        try:
            barrier.wait()
            responses[index] = request()
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, r)) for i, r in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return responses


def _http() -> Http:
    http = Http()
    http.raise_request_exception = False  # a 500 is an outcome to count
    return http


def _code(browser, client) -> tuple[str, str]:
    """A fresh authorization code for `client` (the person approved it once)."""
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    query = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": REDIRECT,
        "scope": "read",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "s",
    }
    response = browser.get("/oauth/authorize/", query)
    if response.status_code == 200:  # the consent page, the first time
        response = browser.post("/oauth/authorize/", {**query, "allow": "Authorize"})
    assert response.status_code == 302, response.content[:500]
    return parse_qs(urlsplit(response["Location"]).query)["code"][0], verifier


def test_one_code_redeemed_twice_at_once_gives_tokens_once(seed_groups):
    person = UserFactory(email="ada@shop.example")
    browser = Http()
    assert login(browser, person.email, PASSWORD).status_code == 302
    client, secret = make_client("authorization_code", redirect_uris=[REDIRECT])
    auth = {"HTTP_AUTHORIZATION": basic(client.client_id, secret)}
    outcomes = []
    for _ in range(ROUNDS):
        code, verifier = _code(browser, client)
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        }
        responses = _race(*[lambda data=data: _http().post(TOKEN, data, **auth)] * CODE_RACERS)
        statuses = sorted(r.status_code for r in responses)
        outcomes.append(statuses)
        # Before the lock: now and then a 500 (Grant.DoesNotExist) among them.
        assert statuses == [200] + [400] * (CODE_RACERS - 1), outcomes
        winner = next(r for r in responses if r.status_code == 200)
        assert {r.json()["error"] for r in responses if r is not winner} == {"invalid_grant"}
        # The code came back: what it gave is revoked (RFC 6749 §4.1.2).
        access = winner.json()["access_token"]
        assert _http().get("/api/v1/me", **bearer(access)).status_code == 401
        again = _http().post(
            TOKEN,
            {"grant_type": "refresh_token", "refresh_token": winner.json()["refresh_token"]},
            **auth,
        )
        assert again.status_code == 400


def test_a_code_used_again_later_revokes_its_tokens(seed_groups):
    person = UserFactory(email="ada@shop.example")
    browser = Http()
    assert login(browser, person.email, PASSWORD).status_code == 302
    client, secret = make_client("authorization_code", redirect_uris=[REDIRECT])
    auth = {"HTTP_AUTHORIZATION": basic(client.client_id, secret)}
    code, verifier = _code(browser, client)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    tokens = _http().post(TOKEN, data, **auth).json()
    assert _http().get("/api/v1/me", **bearer(tokens["access_token"])).status_code == 200
    replayed = _http().post(TOKEN, data, **auth)
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant"
    assert _http().get("/api/v1/me", **bearer(tokens["access_token"])).status_code == 401
    event = AuditEvent.objects.filter(action="api.token.replayed").get()
    assert event.target_id == str(person.pk) and event.details["grant"] == "authorization_code"
    assert event.details["reason"] == "code_reused" and event.details["family_revoked"] is True


def test_two_refreshes_with_one_token_at_once_end_the_family(seed_groups):
    person = UserFactory(email="ada@shop.example")
    client, secret = make_client("password", scopes=["read"])
    auth = {"HTTP_AUTHORIZATION": basic(client.client_id, secret)}
    outcomes = []
    for round_ in range(ROUNDS):
        AuditEvent.objects.filter(action="api.token.replayed").delete()
        issued = _http().post(
            TOKEN, {"grant_type": "password", "username": person.email, "password": PASSWORD},
            **auth,
        ).json()  # fmt: skip
        data = {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]}
        first, second = _race(
            lambda data=data: _http().post(TOKEN, data, **auth),
            lambda data=data: _http().post(TOKEN, data, **auth),
        )
        statuses = sorted([first.status_code, second.status_code])
        outcomes.append(statuses)
        assert statuses == [200, 400], (round_, outcomes)
        winner = first if first.status_code == 200 else second
        loser = second if winner is first else first
        assert loser.json()["error"] == "invalid_grant"
        # The loser was a replay: the family ends, the winner's new pair too.
        assert _http().get("/api/v1/me", **bearer(winner.json()["access_token"])).status_code == 401
        again = {"grant_type": "refresh_token", "refresh_token": winner.json()["refresh_token"]}
        assert _http().post(TOKEN, again, **auth).status_code == 400
        replayed = AuditEvent.objects.filter(action="api.token.replayed")
        assert replayed.count() == 2  # the racing loser, then the winner's token above
        event = replayed.order_by("pk").first()
        assert event.target_id == str(person.pk)
        assert event.details["family_revoked"] is True and event.details["reason"] == "replay"
