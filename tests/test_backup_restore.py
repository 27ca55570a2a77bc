"""A backup and restore round trip, as README "Upgrading, backup and
restore" tells an operator: people with a password, an authenticator app
and a passkey, an API client with a token it was issued, a SCIM client,
and someone logged in; `pg_dump --format=custom`, the original database
dropped, `pg_restore` into a new database, the cache flushed, a server on
the copy with the same DJANGO_SECRET_KEY. Everyone gets back in as before,
and the session made before the backup still holds. With another secret
key only the sessions end (what the README says the key guards). All
through real servers over HTTP. PostgreSQL only (the CI's second pass)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time

import pytest

from tests.servers import Started, create_user, manage
from tests.support.mfa import totp
from tests.support.releases import (
    CACHE_URL,
    NEEDS_POSTGRES_AND_REDIS,
    ON_POSTGRES_AND_REDIS,
    Browser,
    app_env,
    drop_database,
    new_database,
    run_database_name,
)
from tests.webauthn_soft import SoftPasskey, js_data

pytestmark = pytest.mark.skipif(not ON_POSTGRES_AND_REDIS, reason=NEEDS_POSTGRES_AND_REDIS)

PASSWORD = "restore round trip passphrase 3"
SECRET_KEY = "backup-restore-" + "r" * 50
WITH_PASSWORD, WITH_TOTP, WITH_PASSKEY = (
    "pat@shop.example",
    "tom@shop.example",
    "kim@shop.example",
)


def _person(server: Started, ip: str) -> Browser:
    """A browser on `server` at host localhost: a passkey's relying party
    is the page's host, and WebAuthn allows plain http for localhost only."""
    return Browser(ip, host=f"localhost:{server.port}")


def _activate_totp(browser: Browser, base: str) -> tuple[str, set[int]]:
    """The authenticator app turned on: (its secret, the 30 s window of the
    code used for it, which cannot be used again)."""
    page = browser.get(base + "/2fa/totp/activate/")
    secret = re.search(r'id="authenticator_secret"[^>]*>([A-Z2-7]+)<', page.text)[1]
    used = int(time.time() // 30) + 1
    response = browser.post(base + "/2fa/totp/activate/", {"code": totp(secret, step=1)})
    assert response.status_code == 302, response.text[:2000]
    return secret, {used}


def _totp_login(browser: Browser, base: str, secret: str, used: set[int]):
    """Password, then a code within tolerance whose window is not in `used`
    (a code works once); its window is added to `used`."""
    assert browser.login(base, WITH_TOTP, PASSWORD).headers["Location"] == "/2fa/authenticate/"
    now = int(time.time() // 30)
    step = next(s for s in (0, -1, 1) if now + s not in used)
    used.add(now + step)
    return browser.post(base + "/2fa/authenticate/", {"code": totp(secret, step=step)})


def _add_passkey(browser: Browser, base: str) -> SoftPasskey:
    key = SoftPasskey()
    page = browser.get(base + "/2fa/webauthn/add/")
    credential = key.create(js_data(page.text)["creation_options"])
    data = {"name": "Laptop", "credential": json.dumps(credential), "passwordless": "on"}
    response = browser.post(base + "/2fa/webauthn/add/", data)
    assert response.status_code == 302, response.text[:2000]
    return key


def _passkey_login(browser: Browser, base: str, key: SoftPasskey):
    """From the login page (its CSRF cookie), as the page's script does."""
    browser.get(base + "/login/")
    options = browser.get(base + "/2fa/webauthn/login/", headers={"Accept": "application/json"})
    assert options.status_code == 200, options.text[:2000]
    credential = key.get(options.json()["request_options"])
    return browser.post(base + "/2fa/webauthn/login/", {"credential": json.dumps(credential)})


def _client_token(browser: Browser, base: str, client_id: str, secret: str):
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return browser.request(
        "POST",
        base + "/oauth/token/",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )


def _bearer(browser: Browser, url: str, token: str):
    return browser.get(url, headers={"Authorization": f"Bearer {token}"})


def _logged_in(browser: Browser, base: str, email: str) -> bool:
    page = browser.get(base + "/")
    return page.status_code == 200 and email in page.text


def test_a_restored_backup_lets_everyone_back_in(tmp_path):
    run = run_database_name()
    source, copy = f"iam_restore_source_{run}", f"iam_restore_copy_{run}"
    with new_database(source) as source_url, new_database(copy) as copy_url:
        env = app_env(source_url, SECRET_KEY)
        manage(env, "migrate", "--noinput", "-v0")
        for email in (WITH_PASSWORD, WITH_TOTP, WITH_PASSKEY):
            create_user(env, email, "backoffice-users", PASSWORD)
        made = manage(env, "apiclient", "create", "--name", "Shop sync", "--grant",
                      "client_credentials", "--user", WITH_PASSWORD)  # fmt: skip
        api = dict(line.split("=", 1) for line in made.stdout.splitlines() if "=" in line)
        made = manage(env, "scimtoken", "create", "--name", "Entra")
        scim_token = made.stdout.strip().splitlines()[-1]

        server = Started(env, tmp_path / "source.log")
        try:
            server.wait_ready()
            base = server.base
            kept = _person(server, "203.0.113.1")
            assert kept.login(base, WITH_PASSWORD, PASSWORD).headers["Location"] == "/"
            tom = _person(server, "203.0.113.2")
            assert tom.login(base, WITH_TOTP, PASSWORD).headers["Location"] == "/"
            secret, used = _activate_totp(tom, base)
            kim = _person(server, "203.0.113.3")
            assert kim.login(base, WITH_PASSKEY, PASSWORD).headers["Location"] == "/"
            key = _add_passkey(kim, base)
            service = _person(server, "203.0.113.4")
            issued = _client_token(service, base, api["client_id"], api["client_secret"])
            assert issued.status_code == 200, issued.text
            access_token = issued.json()["access_token"]
            assert _bearer(service, base + "/api/v1/me", access_token).status_code == 200
            assert _bearer(service, base + "/scim/v2/Users", scim_token).status_code == 200
        finally:
            server.stop()

        dump = tmp_path / "iam.dump"
        subprocess.run(
            ["pg_dump", "--format=custom", f"--file={dump}", f"--dbname={source_url}"],
            check=True,
        )
        drop_database(source)  # nothing can come from the original now
        subprocess.run(
            ["pg_restore", "--no-owner", "--exit-on-error", "--single-transaction",
             f"--dbname={copy_url}", str(dump)],
            check=True,
        )  # fmt: skip
        # The cache may hold sessions newer than the backup: flushed.
        subprocess.run(["redis-cli", "-u", CACHE_URL, "flushdb"], check=True, capture_output=True)

        restored = Started(app_env(copy_url, SECRET_KEY), tmp_path / "copy.log")
        try:
            restored.wait_ready()
            base = restored.base
            assert _logged_in(kept, base, WITH_PASSWORD)  # the session from before the backup
            pat = _person(restored, "203.0.113.11")
            assert pat.login(base, WITH_PASSWORD, PASSWORD).headers["Location"] == "/"
            assert _logged_in(pat, base, WITH_PASSWORD)
            tom = _person(restored, "203.0.113.12")
            assert _totp_login(tom, base, secret, used).headers["Location"] == "/"
            assert _logged_in(tom, base, WITH_TOTP)
            kim = _person(restored, "203.0.113.13")
            assert _passkey_login(kim, base, key).headers["Location"] == "/"
            assert _logged_in(kim, base, WITH_PASSKEY)
            service = _person(restored, "203.0.113.14")
            assert _bearer(service, base + "/api/v1/me", access_token).status_code == 200
            issued = _client_token(service, base, api["client_id"], api["client_secret"])
            assert issued.status_code == 200, issued.text
            fresh = issued.json()["access_token"]
            assert _bearer(service, base + "/api/v1/me", fresh).status_code == 200
            assert _bearer(service, base + "/scim/v2/Users", scim_token).status_code == 200
        finally:
            restored.stop()

        # Another secret key: the sessions end; passwords, MFA, passkeys,
        # API and SCIM credentials do not depend on it.
        other = Started(app_env(copy_url, "another-key-" + "o" * 50), tmp_path / "other.log")
        try:
            other.wait_ready()
            base = other.base
            assert kept.get(base + "/").status_code == 302
            pat = _person(other, "203.0.113.21")
            assert pat.login(base, WITH_PASSWORD, PASSWORD).headers["Location"] == "/"
            tom = _person(other, "203.0.113.22")
            assert _totp_login(tom, base, secret, used).headers["Location"] == "/"
            kim = _person(other, "203.0.113.23")
            assert _passkey_login(kim, base, key).headers["Location"] == "/"
            service = _person(other, "203.0.113.24")
            assert _bearer(service, base + "/api/v1/me", access_token).status_code == 200
            assert _bearer(service, base + "/scim/v2/Users", scim_token).status_code == 200
        finally:
            other.stop()
        logs = "".join(p.read_text() for p in tmp_path.glob("*.log"))
        assert "Traceback" not in logs, logs[-3000:]
