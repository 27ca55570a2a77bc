"""SSO through a real OpenID provider's pages, in a real browser, under both strategies.

The provider is the `oidc-provider` npm package (OpenID Certified), started
here with node on loopback; its development login form takes the account id
as login and any password.
"""

import json
import os
import re
import socket
import subprocess
from pathlib import Path

import pytest

from accounts.models import User
from sso.models import Identity
from tests.factories import GroupFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

HERE = Path(__file__).parent / "oidc_provider"
ACCOUNTS = {
    "ada": {
        "email": "ada@shop.example",
        "given_name": "Ada",
        "family_name": "Lovelace",
        "roles": ["support"],
    },
    "alan": {
        "email": "alan@shop.example",
        "given_name": "Alan",
        "family_name": "Turing",
        "roles": [],
    },
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def oidc_provider(live_server, settings):
    if not (HERE / "node_modules" / "oidc-provider").exists():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=HERE,
            check=True,
            timeout=300,
        )
    port = _free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "ACCOUNTS": json.dumps(ACCOUNTS),
        "REDIRECT_URIS": f"{live_server.url}/sso/e2e/callback/",
    }
    process = subprocess.Popen(
        ["node", "server.mjs"],
        cwd=HERE,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    line = process.stdout.readline()
    while line and not line.startswith("ready"):
        line = process.stdout.readline()
    assert line.startswith("ready"), "oidc-provider did not start"
    issuer = f"http://127.0.0.1:{port}"
    settings.IAM_SSO_PROVIDERS = {
        "e2e": {
            "id": "e2e",
            "kind": "oidc",
            "name": "Company SSO",
            "client_id": "backoffice",
            "client_secret": "e2e-client-secret",
            "issuer": issuer,
            "tenant": "",
            "authority": "",
            "scopes": ["openid", "email", "profile"],
            "role_claim": "roles",
            "role_map": '{"support": ["support"]}',
            "strategy": "pre-registered",
            "allowed_tenants": [],
        }
    }
    yield settings.IAM_SSO_PROVIDERS["e2e"]
    process.terminate()
    process.wait(timeout=10)


def _sso(page, base, account):
    page.context.clear_cookies()  # a fresh session at the provider too
    page.goto(f"{base}/login/")
    page.click("button:has-text('Log in with Company SSO')")
    page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/interaction/"))
    page.fill("input[name=login]", account)
    page.fill("input[name=password]", "anything")
    page.click("button[type=submit]")
    consent = page.locator("button[type=submit]:has-text('Continue')")
    if consent.count():
        consent.click()


def test_pre_registered_and_auto_provision(live_server, page, oidc_provider, settings):
    base = live_server.url
    GroupFactory(name="support")
    ada = UserFactory(email="ada@shop.example", first_name="Ada", last_name="Lovelace")

    # pre-registered: Ada has an account, Alan has none.
    _sso(page, base, "ada")
    page.wait_for_url(f"{base}/")
    assert page.get_by_test_id("email").inner_text() == "ada@shop.example"
    assert Identity.objects.get(user=ada).subject == "ada"
    assert list(ada.groups.values_list("name", flat=True)) == ["support"]
    page.click("header button:has-text('Log out')")
    page.wait_for_url(f"{base}/login/")

    _sso(page, base, "alan")
    page.wait_for_url(f"{base}/login/")
    assert "no Back Office account for alan@shop.example" in page.locator(".messages").inner_text()
    assert not User.objects.filter(email="alan@shop.example").exists()

    # auto-provision: Alan's first login creates his account.
    oidc_provider["strategy"] = "auto-provision"
    settings.IAM_SSO_PROVIDERS = {"e2e": dict(oidc_provider)}
    _sso(page, base, "alan")
    page.wait_for_url(f"{base}/")
    assert page.get_by_test_id("full-name").inner_text() == "Alan Turing"
    alan = User.objects.get(email="alan@shop.example")
    assert list(alan.groups.values_list("name", flat=True)) == ["backoffice-users"]
    assert not alan.has_usable_password()
