"""An in-process OpenID provider on loopback, for the protocol's edge cases.

It is a real HTTP server (our client talks to it over TCP exactly as to a
real provider), with knobs to misbehave: sign with a foreign key, claim the
wrong issuer or audience, rotate keys, stall, or fail. The happy path is also
covered against the real `oidc-provider` package in tests/e2e.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.support.secrets import remember

CLIENT_ID = "backoffice"
CLIENT_SECRET = "s3cret-for-tests"
TENANT = "11111111-2222-3333-4444-555555555555"


def new_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


class FakeIdP:
    def __init__(self):
        self.keys = [new_key("key-1")]
        self.signing_key = self.keys[0]
        self.codes: dict[str, dict] = {}
        self.access_tokens: dict[str, dict] = {}
        self.hits: Counter = Counter()
        self.reset_behaviour()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reset_behaviour(self):
        self.claim_overrides: dict = {}
        self.drop_claims: set = set()
        self.header_overrides: dict = {}
        self.foreign_key: RSAKey | None = None
        self.delay = 0.0
        self.discovery_status = 200
        self.discovery_issuer: str | None = None  # what discovery names, if not the usual
        self.token_status = 200
        self.token_error = "server_error"
        # PKCE at the authorization endpoint: "optional" (checked when sent),
        # "required" (refused without), "refused" (refused with, as glewlwyd
        # does by default): refusals are error=invalid_request.
        self.pkce = "optional"
        # The provider's own session: when the person last logged in there.
        # prompt=login / max_age=0 make them log in again, unless the
        # provider ignores them (ignore_prompt, a misbehaving provider).
        self.auth_time: int | None = None
        self.ignore_prompt = False
        self.userinfo_claims: dict | None = None
        self.algs = ["RS256"]
        self.raw_id_token: str | None = None
        # RP-initiated logout: discovery names an end_session_endpoint.
        self.end_session = True
        # max_age at the authorization endpoint: "honoured", or "refused"
        # (error=invalid_request "max_age invalid", as glewlwyd 2.7 answers
        # max_age=0).
        self.max_age = "honoured"
        # What discovery says besides (or instead of) the usual fields: a
        # provider that moved an endpoint.
        self.discovery_extra: dict = {}

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    # --- what our settings point at -----------------------------------------

    @property
    def issuer(self) -> str:
        return f"{self.base}/realm"

    def oidc_config(self, pid="fake", **extra) -> dict:
        config = {
            "id": pid,
            "kind": "oidc",
            "name": "Fake IdP",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "issuer": self.issuer,
            "tenant": "",
            "authority": "",
            "scopes": ["openid", "email", "profile"],
            "role_claim": "roles",
            "role_map": "{}",
            "strategy": "pre-registered",
            "allowed_tenants": [],
        }
        config.update(extra)
        return config

    def azure_config(self, pid="azure", tenant="organizations", **extra) -> dict:
        config = self.oidc_config(
            pid,
            kind="azure",
            name="Microsoft",
            issuer="",
            tenant=tenant,
            authority=self.base,
            allowed_tenants=[TENANT],
        )
        config.update(extra)
        return config

    # --- the browser's part, done directly ----------------------------------

    def authorize(self, authorization_url: str, claims: dict) -> str:
        """What the provider's login page would do: remember the request,
        issue a code, and give the callback URL (path and query)."""
        params = {k: v[0] for k, v in parse_qs(urlsplit(authorization_url).query).items()}
        self.last_authorization = params
        callback = urlsplit(params["redirect_uri"])
        refusal = self._pkce_refusal(params)
        if "max_age" in params and self.max_age == "refused":
            refusal = "max_age invalid"
        if refusal:
            answer = {"error": "invalid_request", "error_description": refusal}
            return f"{callback.path}?{urlencode({**answer, 'state': params['state']})}"
        code = secrets.token_urlsafe(16)
        remember(code)
        issuer = self._issuer_for(urlsplit(authorization_url).path)
        # Entra's tokens carry the concrete tenant of the account.
        issuer = issuer.replace("{tenantid}", str(claims.get("tid", "")))
        fresh = params.get("prompt") == "login" or params.get("max_age") == "0"
        if self.auth_time is None or (fresh and not self.ignore_prompt):
            self.auth_time = int(time.time())
        self.codes[code] = {
            "params": params,
            "claims": claims,
            "issuer": issuer,
            "auth_time": self.auth_time,
        }
        return f"{callback.path}?{urlencode({'code': code, 'state': params['state']})}"

    def sso_login(self, client, claims: dict, pid: str = "fake", **data):
        """A whole login through this provider in the test client's browser:
        the "Log in with" button's POST, the provider's page, the callback.
        Returns the callback's response."""
        start = client.post(f"/sso/{pid}/login/", data)
        assert start.status_code == 302, start
        return client.get(self.authorize(start["Location"], claims))

    def _pkce_refusal(self, params: dict) -> str:
        sent = "code_challenge" in params
        if sent and params.get("code_challenge_method") != "S256":
            return "only S256 is supported"
        if sent and self.pkce == "refused":
            return "PKCE is not enabled for this client"
        if not sent and self.pkce == "required":
            return "code_challenge is required"
        return ""

    def _issuer_for(self, path: str) -> str:
        parts = path.strip("/").split("/")
        if len(parts) >= 2 and parts[1] == "v2.0":  # Entra-style: /<tenant>/v2.0/...
            tenant = parts[0]
            return f"{self.base}/{'{tenantid}' if tenant == 'organizations' else tenant}/v2.0"
        return self.issuer

    def rotate_keys(self):
        self.rotations = getattr(self, "rotations", 0) + 1
        self.keys = [new_key(f"key-{self.rotations + 1}")]
        self.signing_key = self.keys[0]

    def sign(self, claims: dict, key: RSAKey | None = None, header: dict | None = None) -> str:
        key = key or self.signing_key
        head = {"alg": "RS256", "kid": key.kid, "typ": "JWT"}
        head.update(header or {})
        return jwt.encode(head, claims, key)

    def logout_token(self, *, key: RSAKey | None = None, drop=(), header=None, **claims) -> str:
        """A back-channel logout token (OpenID Connect Back-Channel Logout
        1.0 §2.4), valid unless told otherwise: `claims` override or add,
        `drop` leaves claims out."""
        now = int(time.time())
        body = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 120,
            "jti": secrets.token_urlsafe(16),
            "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
        }
        body.update(claims)
        for name in drop:
            body.pop(name, None)
        return self.sign(body, key=key, header={"typ": "logout+jwt", **(header or {})})

    # --- HTTP ---------------------------------------------------------------

    def _handler(self):
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _json(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                path = urlsplit(self.path).path
                idp.hits[path] += 1
                if idp.delay:
                    time.sleep(idp.delay)
                if path.endswith("/.well-known/openid-configuration"):
                    if idp.discovery_status != 200:
                        return self._json(idp.discovery_status, {"error": "down"})
                    prefix = path[: -len("/.well-known/openid-configuration")]
                    issuer = idp.discovery_issuer or idp._issuer_for(prefix + "/x")
                    return self._json(
                        200,
                        {
                            "issuer": issuer,
                            "authorization_endpoint": f"{idp.base}{prefix}/authorize",
                            "token_endpoint": f"{idp.base}{prefix}/token",
                            "userinfo_endpoint": f"{idp.base}{prefix}/userinfo",
                            "jwks_uri": f"{idp.base}{prefix}/jwks",
                            "id_token_signing_alg_values_supported": idp.algs,
                            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                            **(
                                {"end_session_endpoint": f"{idp.base}{prefix}/logout"}
                                if idp.end_session
                                else {}
                            ),
                            **idp.discovery_extra,
                        },
                    )
                if path.endswith("/jwks"):
                    return self._json(200, {"keys": [k.as_dict(private=False) for k in idp.keys]})
                if path.endswith("/userinfo"):
                    token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    grant = idp.access_tokens.get(token)
                    if grant is None:
                        return self._json(401, {"error": "invalid_token"})
                    info = idp.userinfo_claims or {"sub": grant["sub"]}
                    return self._json(200, info)
                return self._json(404, {"error": "not_found"})

            def do_POST(self):
                path = urlsplit(self.path).path
                idp.hits[path] += 1
                if idp.delay:
                    time.sleep(idp.delay)
                length = int(self.headers.get("Content-Length", 0))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                if not path.endswith("/token"):
                    return self._json(404, {"error": "not_found"})
                if idp.token_status != 200:
                    return self._json(idp.token_status, {"error": idp.token_error})
                basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
                if self.headers.get("Authorization") != f"Basic {basic}":
                    return self._json(401, {"error": "invalid_client"})
                grant = idp.codes.pop(form.get("code", ""), None)
                if grant is None:
                    return self._json(400, {"error": "invalid_grant"})
                params = grant["params"]
                digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
                challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
                pkce_ok = "code_challenge" not in params or challenge == params["code_challenge"]
                if not pkce_ok or form.get("redirect_uri") != params["redirect_uri"]:
                    return self._json(400, {"error": "invalid_grant"})
                idp.last_token_form = form
                now = int(time.time())
                claims = {
                    "iss": grant["issuer"],
                    "aud": CLIENT_ID,
                    "iat": now,
                    "exp": now + 300,
                    "nonce": params["nonce"],
                    "auth_time": grant["auth_time"],
                }
                claims.update(grant["claims"])
                claims.update(idp.claim_overrides)
                for name in idp.drop_claims:
                    claims.pop(name, None)
                access = secrets.token_urlsafe(16)
                idp.access_tokens[access] = {"sub": claims.get("sub")}
                id_token = idp.raw_id_token or idp.sign(
                    claims, key=idp.foreign_key, header=idp.header_overrides
                )
                remember(access, id_token)
                return self._json(
                    200,
                    {
                        "access_token": access,
                        "token_type": "Bearer",
                        "expires_in": 300,
                        "id_token": id_token,
                    },
                )

        return Handler
