"""A client that behaves like a browser behind the TLS proxy, and the
requests a benchmark repeats (a full login, a warm page)."""

from __future__ import annotations

import threading

import requests

from benchmarks.stack import ADMIN, PASSWORD


class Browser:
    """One browser: its own keep-alive connection, cookies and client IP.

    The app trusts 127.0.0.1 as its proxy, so X-Forwarded-For gives each
    browser its own address (rate limits, audit) and X-Forwarded-Proto says
    https (Secure cookies). The cookies are sent by hand because requests
    would not send Secure ones over plain http. POSTs carry the CSRF token
    and an https Referer, as a form does."""

    _ips = iter(range(1, 1 << 24))
    _ips_lock = threading.Lock()

    def __init__(self, server, timeout: float = 30):
        self.base = server.base
        self.timeout = timeout
        self.http = requests.Session()
        self.http.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
        self.http.verify = server.verify
        with self._ips_lock:
            n = next(self._ips)
        self.http.headers["X-Forwarded-For"] = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
        self.http.headers["X-Forwarded-Proto"] = "https"

    def request(self, method: str, path: str, data: dict | None = None) -> requests.Response:
        headers = {"Cookie": "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)}
        if method == "POST":
            data = {**(data or {}), "csrfmiddlewaretoken": self.http.cookies.get("csrftoken", "")}
            headers["Referer"] = "https://" + self.base.split("://", 1)[1] + path
        return self.http.request(
            method,
            self.base + path,
            data=data,
            headers=headers,
            allow_redirects=False,
            timeout=self.timeout,
        )

    def get(self, path: str, expect: int | None = 200) -> requests.Response:
        response = self.request("GET", path)
        if expect is not None and response.status_code != expect:
            raise AssertionError(f"GET {path}: {response.status_code}, expected {expect}")
        return response

    def post(self, path: str, data: dict | None = None) -> requests.Response:
        return self.request("POST", path, data)

    def login(self, email: str = ADMIN, password: str = PASSWORD) -> Browser:
        """A full password login: GET /login/, POST, GET / (the dashboard)."""
        self.get("/login/")
        response = self.post("/login/", {"login": email, "password": password})
        if response.status_code != 302 or response.headers.get("Location") != "/":
            raise AssertionError(f"login refused: {response.status_code} {response.headers}")
        self.get("/")
        return self

    def close(self) -> None:
        self.http.close()


def full_login(server, email: str = ADMIN, password: str = PASSWORD) -> None:
    """A new browser (a new connection, and a TLS handshake with TLS) logs in."""
    Browser(server).login(email, password).close()
