"""A small OpenID provider on loopback for the SSO benchmarks: discovery,
keys, the token endpoint (with PKCE), and `authorize()` in place of the
provider's login page; `delay` makes every answer late (a hanging provider).

The tests have a fuller one with knobs to misbehave (tests/oidc_fake.py);
benchmarks need only the happy path and a stall, and must not import tests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

CLIENT_ID = "backoffice"
CLIENT_SECRET = "bench-client-secret"  # noqa: S105


class FakeIdP:
    def __init__(self):
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"})
        self.codes: dict[str, dict] = {}
        self.delay = 0.0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def issuer(self) -> str:
        return f"{self.base}/realm"

    def env(self, pid: str = "FAKE") -> dict[str, str]:
        """The settings that point the app at this provider."""
        prefix = f"IAM_SSO_{pid}_"
        return {
            "IAM_SSO_PROVIDERS": pid.lower(),
            prefix + "KIND": "oidc",
            prefix + "NAME": "Fake IdP",
            prefix + "ISSUER": self.issuer,
            prefix + "CLIENT_ID": CLIENT_ID,
            prefix + "CLIENT_SECRET": CLIENT_SECRET,
        }

    def authorize(self, authorization_url: str, claims: dict) -> str:
        """What the login page would do: a code for `claims`; returns the
        callback's path and query."""
        params = {k: v[0] for k, v in parse_qs(urlsplit(authorization_url).query).items()}
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"params": params, "claims": claims, "auth_time": int(time.time())}
        callback = urlsplit(params["redirect_uri"]).path
        return f"{callback}?{urlencode({'code': code, 'state': params['state']})}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def token(self, form: dict) -> tuple[int, dict]:
        grant = self.codes.pop(form.get("code", ""), None)
        if grant is None:
            return 400, {"error": "invalid_grant"}
        params = grant["params"]
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if "code_challenge" in params and challenge != params["code_challenge"]:
            return 400, {"error": "invalid_grant"}
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": params["nonce"],
            "auth_time": grant["auth_time"],
            **grant["claims"],
        }
        header = {"alg": "RS256", "kid": "k1", "typ": "JWT"}
        id_token = jwt.encode(header, claims, self.key)
        access = secrets.token_urlsafe(16)
        return 200, {"access_token": access, "token_type": "Bearer", "id_token": id_token}

    def _handler(self):
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _json(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                time.sleep(idp.delay)
                path = urlsplit(self.path).path
                if path == "/realm/.well-known/openid-configuration":
                    return self._json(
                        200,
                        {
                            "issuer": idp.issuer,
                            "authorization_endpoint": f"{idp.issuer}/authorize",
                            "token_endpoint": f"{idp.issuer}/token",
                            "userinfo_endpoint": f"{idp.issuer}/userinfo",
                            "jwks_uri": f"{idp.issuer}/jwks",
                            "id_token_signing_alg_values_supported": ["RS256"],
                            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                        },
                    )
                if path == "/realm/jwks":
                    return self._json(200, {"keys": [idp.key.as_dict(private=False)]})
                return self._json(404, {"error": "not_found"})

            def do_POST(self):
                time.sleep(idp.delay)
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
                if self.headers.get("Authorization") != f"Basic {basic}":
                    return self._json(401, {"error": "invalid_client"})
                return self._json(*idp.token(form))

        return Handler
