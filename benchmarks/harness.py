"""What the gunicorn benchmarks share: the app under gunicorn in production
settings on loopback, and clients that behave like browsers behind a TLS proxy.

The server is `gunicorn -c gunicorn.conf.py iam.wsgi` with DEBUG off, plain
HTTP on loopback and `X-Forwarded-Proto: https` / `X-Forwarded-For` from a
trusted proxy (IAM_TRUSTED_PROXIES=127.0.0.1), so cookies are Secure and each
simulated client has its own IP, as behind nginx. CPU and memory are read
from /proc.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import requests

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")
PYTHON = sys.executable


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mib(pid: int) -> float:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_postgres_database(url: str) -> None:
    """Create the database named in a postgres:// URL if it is missing."""
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def production_env(**overrides: str) -> dict[str, str]:
    """The server's environment: DATABASE_URL / CACHE_URL from ours (SQLite in
    a temporary directory and local memory when unset), DEBUG off."""
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3")
    env.update(
        DJANGO_SETTINGS_MODULE="iam.settings",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="bench-" + "k" * 60,
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_STATICFILES_STORAGE="django.contrib.staticfiles.storage.StaticFilesStorage",
        DJANGO_LOG_LEVEL="WARNING",
        IAM_TRUSTED_PROXIES="127.0.0.1",
        GUNICORN_ACCESSLOG="/dev/null",
    )
    env.update(overrides)
    return env


def describe(env: dict[str, str]) -> str:
    database = env["DATABASE_URL"].split(":")[0]
    cache = env.get("CACHE_URL", "locmem").split(":")[0]
    return {"postgres": "PostgreSQL", "sqlite": "SQLite"}.get(database, database) + (
        " / Redis" if cache == "redis" else " / local memory"
    )


def manage(env: dict[str, str], *args: str, stdin: str | None = None, root: Path = ROOT) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=root,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"manage.py {args[0]} failed:\n{result.stderr}")
    return result.stdout


def prepare(env: dict[str, str], root: Path = ROOT) -> None:
    if env["DATABASE_URL"].startswith("postgres"):
        ensure_postgres_database(env["DATABASE_URL"])
    manage(env, "migrate", "-v0", root=root)


def create_users(
    env: dict[str, str], users: list[tuple[str, str, list[str]]], root: Path = ROOT
) -> None:
    """(email, password, group names) each; existing ones are replaced."""
    code = (
        "import json, sys\n"
        "from accounts.models import Group, User\n"
        "from accounts.services import user_create\n"
        "for email, password, groups in json.load(sys.stdin):\n"
        "    User.objects.filter(email=email).delete()\n"
        "    user_create(email=email, first_name='Bench', last_name='User', password=password,\n"
        "                groups=list(Group.objects.filter(name__in=groups)), via='benchmark')\n"
    )
    manage(env, "shell", "-c", code, stdin=json.dumps(users), root=root)


class Server:
    """gunicorn with gunicorn.conf.py; `workers` processes, their pids known.
    `root`: the source tree to serve (another checkout, to compare code)."""

    def __init__(
        self,
        env: dict[str, str],
        workers: int = 1,
        log: Path | None = None,
        root: Path = ROOT,
        app: str = "iam.wsgi",
    ):
        self.root = root
        self.app = app
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**env, "GUNICORN_BIND": f"127.0.0.1:{self.port}"}
        self.env["GUNICORN_WORKERS"] = str(workers)
        self.log_path = log or Path(tempfile.mkdtemp()) / "gunicorn.log"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [PYTHON, "-m", "gunicorn", "-c", "gunicorn.conf.py", self.app],
            cwd=self.root,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(self.base + "/healthz", timeout=1).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):  # still booting
                time.sleep(0.1)
        else:
            raise SystemExit(f"gunicorn did not start; see {self.log_path}")
        while len(self.workers()) < int(self.env["GUNICORN_WORKERS"]):
            time.sleep(0.1)
        return self

    def workers(self) -> list[int]:
        pid = self.process.pid
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self._log.close()


class Browser:
    """A browser behind the TLS proxy: it sees https and sends its Secure
    cookies (requests would not send them over http), its own client IP
    arrives in X-Forwarded-For, and POSTs carry the CSRF token and an https
    Referer as a real form does."""

    _ips = iter(range(1, 1 << 24))
    _ips_lock = threading.Lock()

    def __init__(self, base: str, timeout: float = 30):
        self.base = base
        self.timeout = timeout
        self.http = requests.Session()
        with self._ips_lock:
            n = next(self._ips)
        self.http.headers["X-Forwarded-For"] = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
        self.http.headers["X-Forwarded-Proto"] = "https"

    def request(self, method: str, path: str, data: dict | None = None) -> requests.Response:
        headers = {"Cookie": "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)}
        if method == "POST":
            data = {**(data or {}), "csrfmiddlewaretoken": self.http.cookies.get("csrftoken", "")}
            headers["Referer"] = self.base.replace("http:", "https:") + path
        return self.http.request(
            method,
            self.base + path,
            data=data,
            headers=headers,
            allow_redirects=False,
            timeout=self.timeout,
        )

    def get(self, path: str) -> requests.Response:
        return self.request("GET", path)

    def post(self, path: str, data: dict | None = None) -> requests.Response:
        return self.request("POST", path, data)

    def login(self, email: str, password: str) -> requests.Response:
        """GET /login/, POST the credentials; a 302 to / means logged in."""
        self.get("/login/")
        return self.post("/login/", {"login": email, "password": password})
