"""Token grants per second per core: refresh-token and client-credentials
grants against the production server.

    python benchmarks/token_grants.py [--seconds 15] [--clients 8]

Starts `gunicorn -c gunicorn.conf.py iam.wsgi` itself (1 worker, 4 threads,
DEBUG off) on PostgreSQL database `iam_api_bench` and Redis database 6
(DATABASE_URL / CACHE_URL override them), creates an account and two API
clients, then for each grant keeps `--clients` HTTP clients (keep-alive)
busy for `--seconds` and reports grants per second and the server's CPU
per grant, read from /proc (master and worker). Grants per CPU-second is
what one core of the server sustains. Each grant is the whole thing:
client authentication, the token rows, rotation (refresh: the old pair
revoked), and its audit event.

The anchor is Keycloak's sizing guide: 120 refresh or client-credentials
grants per second per vCPU; the aim is twice that.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import requests

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")
PASSWORD = "bench passphrase that is long enough"
SETUP = """
from accounts.models import User
from accounts import services as accounts
from api import services
from api.models import Client
Client.objects.all().delete()
user = User.objects.filter(email="bench@shop.example").first() or accounts.user_create(
    email="bench@shop.example", first_name="Bench", last_name="Mark",
    password={password!r}, actor=None)
for grant, account in (("password", None), ("client_credentials", user)):
    client, secret = services.client_create(name="bench-" + grant, grant=grant,
        account=account, scopes=["read"], actor=None)
    print(grant, client.client_id, secret)
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    with psycopg.connect(parsed._replace(path="/postgres").geturl(), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def server_env(port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/iam_api_bench")
    env.setdefault("CACHE_URL", "redis://127.0.0.1:6379/6")
    env.update(
        DJANGO_SETTINGS_MODULE="iam.settings",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="bench-" + "k" * 60,
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_LOG_LEVEL="WARNING",
        GUNICORN_ACCESSLOG="",
        GUNICORN_WORKERS="1",
        GUNICORN_THREADS="4",
        GUNICORN_BIND=f"127.0.0.1:{port}",
        IAM_MFA_REQUIRED_GROUPS="",
    )
    return env


def manage(env, *args) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, text=True,
        capture_output=True, check=True,
    )  # fmt: skip
    return done.stdout


def run(seconds: float, clients: int, work) -> tuple[int, int]:
    """`clients` threads call `work(session, state)` until time is up;
    (grants that succeeded, failures)."""
    stop = time.monotonic() + seconds
    counts = [[0, 0] for _ in range(clients)]

    def loop(i):
        session, state = requests.Session(), {"i": i}
        while time.monotonic() < stop:
            counts[i][0 if work(session, state) else 1] += 1

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args(argv)

    port = free_port()
    env = server_env(port)
    if env["DATABASE_URL"].startswith("postgres"):
        ensure_database(env["DATABASE_URL"])
    manage(env, "migrate", "--noinput", "-v0")
    ids = {}
    for line in manage(env, "shell", "-c", SETUP.format(password=PASSWORD)).splitlines():
        words = line.split()
        if len(words) == 3 and words[0] in ("password", "client_credentials"):
            ids[words[0]] = (words[1], words[2])
    base = f"http://127.0.0.1:{port}"
    token_url = base + "/oauth/token/"
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "iam.wsgi"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(300):
            try:
                if requests.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)

        def server_cpu() -> float:
            return sum(cpu_seconds(p) for p in [server.pid, *children(server.pid)])

        password_client = ids["password"]
        refresh_tokens = []
        for _ in range(args.clients):  # one refresh-token chain per HTTP client
            answer = requests.post(
                token_url, auth=password_client, timeout=30,
                data={"grant_type": "password", "username": "bench@shop.example",
                      "password": PASSWORD},
            ).json()  # fmt: skip
            refresh_tokens.append(answer["refresh_token"])

        def client_credentials(session, state):
            response = session.post(
                token_url, data={"grant_type": "client_credentials"},
                auth=ids["client_credentials"], timeout=30,
            )  # fmt: skip
            return response.status_code == 200

        def refresh(session, state):
            response = session.post(
                token_url, auth=password_client, timeout=30,
                data={"grant_type": "refresh_token", "refresh_token": refresh_tokens[state["i"]]},
            )  # fmt: skip
            if response.status_code != 200:
                return False
            refresh_tokens[state["i"]] = response.json()["refresh_token"]
            return True

        print(f"server: gunicorn 1 worker x 4 threads, {env['DATABASE_URL'].split('@')[-1]}, "
              f"{env['CACHE_URL']}; {args.clients} clients, {args.seconds:.0f} s each")  # fmt: skip
        header = ("grant", "grants/s", "CPU ms/grant", "per core/s", "failed")
        print("{:<20} {:>9} {:>13} {:>11} {:>7}".format(*header))
        run(2, args.clients, client_credentials)  # warm-up
        for name, work in (("client_credentials", client_credentials), ("refresh_token", refresh)):
            cpu0, t0 = server_cpu(), time.monotonic()
            ok, failed = run(args.seconds, args.clients, work)
            cpu, wall = server_cpu() - cpu0, time.monotonic() - t0
            per_grant = cpu / ok * 1000 if ok else float("nan")
            print(f"{name:<20} {ok / wall:>9.0f} {per_grant:>13.2f} {1000 / per_grant:>11.0f} "
                  f"{failed:>7}")  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=15)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
