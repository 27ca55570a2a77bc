"""The real `oidc-provider` (Node.js) the browser tests log in at."""

import fcntl
import json
import os
import re
import socket
import subprocess
from pathlib import Path

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
    # Only the standard `name`, and one role as a plain string.
    "erin": {"email": "erin@shop.example", "name": "Erin Evans", "roles": "support"},
    # Addresses the provider does not vouch for: not verified, or not saying.
    "eve": {"email": "eve@shop.example", "email_verified": False, "name": "Eve"},
    "max": {"email": "max@shop.example", "email_verified": None, "name": "Max"},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_provider(live_server, **env_extra) -> tuple[subprocess.Popen, str]:
    """The `oidc-provider` process for our client (npm ci the first time),
    once it says it is ready; (process, issuer)."""
    with (HERE / "package.json").open() as lock:
        # One `npm ci` at a time: both CI legs may get here at once.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (HERE / "node_modules" / "oidc-provider").exists():
            subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=HERE,
                check=True,
                timeout=300,
            )
    for _ in range(3):
        port = free_port()
        env = {
            **os.environ,
            "PORT": str(port),
            "ACCOUNTS": json.dumps(ACCOUNTS),
            "REDIRECT_URIS": f"{live_server.url}/sso/e2e/callback/",
            **env_extra,
        }
        process = subprocess.Popen(
            ["node", "server.mjs"],
            cwd=HERE,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        said = []
        line = process.stdout.readline()
        while line and not line.startswith("ready"):
            said.append(line)
            line = process.stdout.readline()
        if line.startswith("ready"):
            return process, f"http://127.0.0.1:{port}"
        process.wait()
        # The free port was taken before node bound it (another process on
        # this machine, e.g. CI's other leg): again on another.
        if "EADDRINUSE" not in "".join(said):
            break
    raise AssertionError("oidc-provider did not start:\n" + "".join(said)[-3000:])


def e2e_provider(issuer: str, **extra) -> dict:
    """The provider's entry in IAM_SSO_PROVIDERS."""
    return {
        "id": "e2e",
        "kind": "oidc",
        "name": "Company SSO",
        "client_id": "backoffice",
        "client_secret": "e2e-client-secret",
        "issuer": issuer,
        "scopes": ["openid", "email", "profile"],
        "strategy": "pre-registered",
        **extra,
    }


def log_in_at_provider(page, account):
    page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/interaction/"))
    page.fill("input[name=login]", account)
    page.fill("input[name=password]", "anything")
    page.click("button[type=submit]")
    consent = page.locator("button[type=submit]:has-text('Continue')")
    if consent.count():
        consent.click()
