"""Opt-in interoperability with a real certified provider: glewlwyd 2.7
(Debian's package, `apt-get install glewlwyd`), started here on loopback with
a SQLite database of its own. Not part of CI: it runs only with
IAM_INTEROP_GLEWLWYD=1 and the `glewlwyd` program installed.

    IAM_INTEROP_GLEWLWYD=1 .venv/bin/python -m pytest tests/test_sso_glewlwyd_interop.py

What glewlwyd does that other providers do not, as found here: it refuses a
code challenge unless "PKCE allowed" is on; it sends no `email_verified`; it
answers max_age=0 with invalid_request "max_age invalid"; it answers
auth_time 0. The person's part at glewlwyd's login page is done through its
own API (log in, grant the scope, `g_continue`), as its web app does.
"""

import gzip
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth.hashers import make_password

from accounts.models import AuditEvent
from sso.models import Identity
from tests import conftest
from tests.factories import UserFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        os.environ.get("IAM_INTEROP_GLEWLWYD") != "1" or not shutil.which("glewlwyd"),
        reason="opt-in: IAM_INTEROP_GLEWLWYD=1 and glewlwyd installed",
    ),
]

INIT_SQL = Path("/usr/share/doc/glewlwyd/database/init.sqlite3.sql.gz")
DEBIAN_CONF = Path("/etc/glewlwyd/glewlwyd.conf")
CALLBACK = "http://testserver/sso/glew/callback/"
SECRET = "s3cret-for-interop"
PERSON = ("ada", "Passw0rd-for-ada!")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pem_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private.decode(), public.decode()


class Glewlwyd:
    def __init__(self, root: Path):
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.issuer = f"{self.base}/api/oidc"
        db = root / "glewlwyd.db"
        with sqlite3.connect(db) as conn:
            with gzip.open(INIT_SQL, "rt") as sql:
                conn.executescript(sql.read())
            private, public = _pem_pair()
            params = {
                "iss": self.issuer,
                "jwt-type": "rsa",
                "jwt-key-size": "256",
                "key": private,
                "cert": public,
                "access-token-duration": 3600,
                "refresh-token-duration": 1209600,
                "code-duration": 600,
                "refresh-token-rolling": True,
                "allow-non-oidc": False,
                "auth-type-code-enabled": True,
                "auth-type-refresh-enabled": True,
                "name-claim": "mandatory",
                "email-claim": "mandatory",
                "scope-claim": "no",
                "jwks-show": True,
                "session-management-allowed": True,
                "session-cookie-name": "GLEWLWYD_OIDC_SID",
                "session-cookie-expiration": 2419200,
                "scope": [],
                "claims": [],
            }
            conn.execute(
                "INSERT INTO g_plugin_module_instance (gpmi_module, gpmi_name, "
                "gpmi_display_name, gpmi_parameters) VALUES ('oidc', 'oidc', 'OIDC', ?)",
                (json.dumps(params),),
            )
        config = DEBIAN_CONF.read_text()
        config = config.replace("port=4593", f"port={self.port}")
        config = config.replace(
            'external_url="http://localhost:4593/"', f'external_url="{self.base}"'
        )
        config = config.replace('log_mode="file"', 'log_mode="console"')
        config = config.replace(
            '@include "/etc/glewlwyd/glewlwyd-db.conf"',
            f'database =\n{{\n  type = "sqlite3"\n  path = "{db}"\n}}',
        )
        config = config.replace("cookie_secure=1", "cookie_secure=0")
        (root / "glewlwyd.conf").write_text(config)
        self.log = open(root / "glewlwyd.log", "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            ["glewlwyd", "-c", str(root / "glewlwyd.conf")], stdout=self.log, stderr=self.log
        )
        for _ in range(50):
            try:
                if requests.get(self.issuer + "/.well-known/openid-configuration").ok:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        else:
            self.stop()
            pytest.fail(f"glewlwyd did not start: {(root / 'glewlwyd.log').read_text()[-2000:]}")
        try:
            self._set_up()
        except BaseException:
            self.stop()
            raise

    def _set_up(self):
        admin = requests.Session()
        self._ok(
            admin.post(f"{self.base}/api/auth/", json={"username": "admin", "password": "password"})
        )
        self._ok(admin.put(f"{self.base}/api/scope/openid", json={
            "name": "openid", "display_name": "Open ID", "description": "OpenID Connect",
            "password_required": True, "password_max_age": 0, "scheme": {},
        }))  # fmt: skip
        self._ok(admin.post(f"{self.base}/api/client/", json={
            "client_id": "backoffice", "name": "Back Office", "confidential": True,
            "password": SECRET, "client_secret": SECRET,
            "token_endpoint_auth_method": ["client_secret_basic"],
            "redirect_uri": [CALLBACK], "authorization_type": ["code", "refresh_token"],
            "enabled": True,
        }))  # fmt: skip
        self._ok(admin.post(f"{self.base}/api/user/", json={
            "username": PERSON[0], "name": "Ada Lovelace", "email": "ada@shop.example",
            "password": PERSON[1], "scope": ["openid", "g_profile"], "enabled": True,
        }))  # fmt: skip
        # The person's browser at glewlwyd: logged in, the scope granted.
        self.browser = requests.Session()
        self._ok(
            self.browser.post(
                f"{self.base}/api/auth/", json={"username": PERSON[0], "password": PERSON[1]}
            )
        )
        self._ok(
            self.browser.put(f"{self.base}/api/auth/grant/backoffice", json={"scope": "openid"})
        )

    @staticmethod
    def _ok(response):
        assert response.ok, (response.status_code, response.text[:500])

    def answer(self, authorization_url: str) -> str:
        """What glewlwyd sends the browser back with (path and query of our
        callback), after its login page (`g_continue`: the person continued)."""
        response = self.browser.get(authorization_url + "&g_continue", allow_redirects=False)
        location = response.headers.get("Location", "")
        assert response.status_code == 302 and location.startswith(CALLBACK), location
        return location.removeprefix("http://testserver")

    def config(self, **extra) -> dict:
        return {
            "id": "glew",
            "kind": "oidc",
            "name": "glewlwyd",
            "client_id": "backoffice",
            "client_secret": SECRET,
            "issuer": self.issuer,
            "scopes": ["openid"],
            "strategy": "pre-registered",
            **extra,
        }

    def stop(self):
        self.process.terminate()
        self.process.wait(10)
        self.log.close()


@pytest.fixture(scope="module")
def glewlwyd(tmp_path_factory):
    server = Glewlwyd(tmp_path_factory.mktemp("glewlwyd"))
    yield server
    server.stop()


def sso_login(client, glewlwyd):
    start = client.post("/sso/glew/login/")
    assert start.status_code == 302, start
    return client.get(glewlwyd.answer(start["Location"]))


def reason() -> str:
    return AuditEvent.objects.filter(action="sso.failed").latest("id").details["reason"]


def test_pkce_and_email_verified_as_glewlwyd_answers(client, glewlwyd, settings):
    UserFactory(email="ada@shop.example", password=make_password(None))
    settings.IAM_SSO_PROVIDERS = {"glew": glewlwyd.config()}
    refused = sso_login(client, glewlwyd)
    assert refused["Location"] == "/login/"
    assert "IAM_SSO_GLEW_PKCE" in client.get("/login/").content.decode()
    settings.IAM_SSO_PROVIDERS = {"glew": glewlwyd.config(pkce="false")}
    assert sso_login(client, glewlwyd)["Location"] == "/login/"
    assert reason() == "email_not_verified:email_verified_not_true"
    settings.IAM_SSO_PROVIDERS = {"glew": glewlwyd.config(pkce="false", trust_email="true")}
    assert sso_login(client, glewlwyd)["Location"] == "/"
    assert Identity.objects.get(provider="glew").issuer == glewlwyd.issuer


@pytest.mark.parametrize("mode", ["max_age", "prompt"])
def test_reauthentication(client, glewlwyd, settings, mode):
    settings.IAM_SSO_PROVIDERS = {
        "glew": glewlwyd.config(pkce="false", trust_email="true", reauth=mode)
    }
    UserFactory(email="ada@shop.example", password=make_password(None), groups=["root"])
    target = UserFactory(email="target@shop.example")
    assert sso_login(client, glewlwyd)["Location"] == "/"
    conftest.age_authentication(client.session)
    asked = client.post(f"/users/{target.pk}/block/")["Location"]
    assert asked.startswith("/sso/glew/reauthenticate/")
    url = client.post("/sso/glew/reauthenticate/", {"next": f"/users/{target.pk}/block/"})
    query = parse_qs(urlsplit(url["Location"]).query)
    back = client.get(glewlwyd.answer(url["Location"]))
    target.refresh_from_db()
    if mode == "max_age":
        assert query["max_age"] == ["0"]
        assert back["Location"].startswith("/sso/glew/reauthenticate/")
        html = client.get(back["Location"]).content.decode()
        assert "max_age invalid" in html and "IAM_SSO_GLEW_REAUTH" in html
        assert "PKCE" not in html
        assert reason() == "idp_error:invalid_request:check_reauth"
        assert target.is_active
    else:
        assert "max_age" not in query and query["prompt"] == ["login"]
        assert back["Location"] == f"/users/{target.pk}/"  # auth_time 0 accepted
        assert not target.is_active
