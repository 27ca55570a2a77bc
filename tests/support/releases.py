"""What the upgrade and restore tests share: the previous release's tree (the
commit deploy/previous-release names, taken from git), databases of their
own on the run's PostgreSQL, the settings of a production server on
loopback, and a person's browser behind the TLS proxy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import requests
from requests.cookies import RequestsCookieJar, extract_cookies_to_jar

ROOT = Path(__file__).resolve().parent.parent.parent
PREVIOUS_RELEASE = ROOT / "deploy" / "previous-release"
DATABASE_URL = os.environ.get("DATABASE_URL", "")
CACHE_URL = os.environ.get("CACHE_URL", "")
ON_POSTGRES_AND_REDIS = DATABASE_URL.startswith("postgres") and CACHE_URL.startswith("redis")
NEEDS_POSTGRES_AND_REDIS = (
    "needs DATABASE_URL=postgres://… and CACHE_URL=redis://… (the CI's second pass): "
    "an upgrade and a restore are PostgreSQL's, with sessions shared through Redis"
)


def previous_release() -> str:
    """The commit of the previous release: the first line of
    deploy/previous-release that is not a comment."""
    for line in PREVIOUS_RELEASE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            return line.strip()
    raise RuntimeError(f"{PREVIOUS_RELEASE} names no commit")


def checkout(commit: str, into: Path) -> Path:
    """The tree of `commit` written to `into` (git archive: no worktree is
    registered), its translations compiled as its image would."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", commit], capture_output=True
    )
    if archive.returncode != 0:
        raise RuntimeError(
            f"the previous release {commit} (deploy/previous-release) is not in this clone "
            f"(a shallow clone? `git fetch --unshallow`): {archive.stderr.decode().strip()}"
        )
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    subprocess.run(
        [sys.executable, "-m", "iam.catalogues"],
        cwd=into,
        env={**os.environ, "PYTHONPATH": str(into)},
        check=True,
        capture_output=True,
    )
    return into


def worker_command(root: Path) -> list[str]:
    """The mail worker as the tree `root` runs it: the command of its
    docker-compose.yml's `worker` service (a JSON list), on this interpreter."""
    text = (root / "docker-compose.yml").read_text()
    block = text.split("\n  worker:\n", 1)[1]
    line = next(line for line in block.splitlines() if line.strip().startswith("command:"))
    argv = json.loads(line.split("command:", 1)[1])
    return [sys.executable if argv[0] == "python" else argv[0], *argv[1:]]


def database_url(name: str) -> str:
    return urlsplit(DATABASE_URL)._replace(path=f"/{name}").geturl()


def run_database_name() -> str:
    """The run's own database, so two runs on one server keep apart."""
    return urlsplit(DATABASE_URL).path.strip("/") or "iam"


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def new_database(name: str):
    """An empty database `name` (dropped first if a killed run left it);
    yields its URL and drops it at the end."""
    import psycopg

    drop_database(name)
    with psycopg.connect(database_url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(name)
    finally:
        drop_database(name)


def app_env(url: str, secret_key: str) -> dict:
    """A production server's settings on loopback, behind a TLS proxy at
    127.0.0.1 (X-Forwarded-* believed), on database `url` and the run's Redis."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=url,
        CACHE_URL=CACHE_URL,
        DJANGO_SETTINGS_MODULE="iam.settings",
        DJANGO_SECRET_KEY=secret_key,
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DJANGO_SECURE_SSL_REDIRECT="false",
        IAM_TRUSTED_PROXIES="127.0.0.1",
        IAM_MFA_REQUIRED_GROUPS="",
        DJANGO_STATICFILES_STORAGE="django.contrib.staticfiles.storage.StaticFilesStorage",
        DJANGO_LOG_LEVEL="WARNING",
    )
    return env


class Browser:
    """A person's browser behind the TLS proxy: its cookies (Secure ones
    sent although the hop on loopback is plain HTTP), its address as
    X-Forwarded-For, and a new connection for each request (a server
    replaced between two requests leaves no stale one). `host`: the Host it
    believes it talks to (a passkey's relying party is the page's host)."""

    def __init__(self, ip: str, host: str | None = None):
        self.ip = ip
        self.host = host
        self.cookies = RequestsCookieJar()

    def request(self, method: str, url: str, **kwargs) -> requests.Response:
        host = self.host or urlsplit(url).netloc
        headers = {
            "Cookie": "; ".join(f"{c.name}={c.value}" for c in self.cookies),
            "Host": host,
            "X-Forwarded-Proto": "https",
            "X-Forwarded-For": self.ip,
            "Referer": f"https://{host}/",
            "Connection": "close",
            **kwargs.pop("headers", {}),
        }
        response = requests.request(
            method, url, headers=headers, allow_redirects=False, timeout=30, **kwargs
        )
        extract_cookies_to_jar(self.cookies, response.request, response.raw)
        return response

    def get(self, url: str, **kwargs) -> requests.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, data: dict, **kwargs) -> requests.Response:
        """A form post with the CSRF token a page's form carries."""
        form = {**data, "csrfmiddlewaretoken": self.cookies.get("csrftoken", "")}
        return self.request("POST", url, data=form, **kwargs)

    def login(self, base: str, email: str, password: str) -> requests.Response:
        self.get(base + "/login/")
        return self.post(base + "/login/", {"login": email, "password": password})
