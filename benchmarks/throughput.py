"""Server CPU per password login and per dashboard view, under gunicorn.

    .venv/bin/python benchmarks/throughput.py --logins 300 --views 2000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/iam_tp CACHE_URL=redis://127.0.0.1:6379/12 \
        .venv/bin/python benchmarks/throughput.py

Starts gunicorn with gunicorn.conf.py in production settings (DEBUG off,
plain HTTP behind a trusted proxy header on loopback), one worker so its CPU
time is the request's, then drives it with real HTTP clients and reads the
worker's user+system CPU time from /proc before and after each phase.
A login is GET /login/, POST the credentials, GET /. Clients appear as
distinct IPs through X-Forwarded-For (the per-IP login rate limit would
otherwise stop a single benchmark client). Compare the login figure with
benchmarks/argon2_verify.py.
"""

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")
PASSWORD = "throughput bench passphrase 1"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mib(pid: int) -> float:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024


def call(client: requests.Session, method: str, url: str, **kwargs) -> requests.Response:
    """One request as a browser behind a TLS proxy makes it: the browser sees
    https and sends its Secure cookies; the proxy forwards plain HTTP on
    loopback. (requests itself will not send Secure cookies over http.)"""
    headers = {"Cookie": "; ".join(f"{c.name}={c.value}" for c in client.cookies)}
    headers.update(kwargs.pop("headers", {}))
    return client.request(method, url, headers=headers, allow_redirects=False, **kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--logins", type=int, default=300)
    parser.add_argument("--views", type=int, default=2000)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for the server, to compare settings",
    )
    args = parser.parse_args()

    env = dict(os.environ)
    env.setdefault("DATABASE_URL", f"sqlite:///{tempfile.mkdtemp()}/tp.sqlite3")
    port = free_port()
    env.update(
        DJANGO_SETTINGS_MODULE="iam.settings",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="bench-" + "k" * 60,
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_STATICFILES_STORAGE="django.contrib.staticfiles.storage.StaticFilesStorage",
        DJANGO_LOG_LEVEL="WARNING",
        IAM_TRUSTED_PROXIES="127.0.0.1",
        IAM_RATE_LOGIN_FAILED="10000/m/ip,10000/m/key",
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS="1",
        GUNICORN_ACCESSLOG="/dev/null",
    )
    env.update(item.split("=", 1) for item in args.set)
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [
            python,
            "manage.py",
            "shell",
            "-c",
            "from accounts.models import User; User.objects.filter(email='bench@shop.example')"
            ".delete(); User.objects.create_user('bench@shop.example', password='"
            + PASSWORD
            + "', first_name='Bench', last_name='Mark')",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    server = subprocess.Popen(
        [python, "-m", "gunicorn", "-c", "gunicorn.conf.py", "iam.wsgi"], cwd=ROOT, env=env
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                requests.get(base + "/healthz", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        worker = int(children[0])

        def login(n: int) -> requests.Session:
            client = requests.Session()
            client.headers["X-Forwarded-For"] = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
            client.headers["X-Forwarded-Proto"] = "https"
            call(client, "GET", base + "/login/")
            response = call(
                client,
                "POST",
                base + "/login/",
                data={
                    "login": "bench@shop.example",
                    "password": PASSWORD,
                    "csrfmiddlewaretoken": client.cookies["csrftoken"],
                },
                headers={"Referer": base.replace("http:", "https:") + "/login/"},
            )
            assert response.status_code == 302 and response.headers["Location"] == "/", response
            assert call(client, "GET", base + "/").status_code == 200
            return client

        for n in range(20):  # warm-up
            login(n)
        rss_start = rss_mib(worker)
        cpu0, t0 = cpu_seconds(worker), time.perf_counter()
        for n in range(args.logins):
            client = login(1000 + n)
        cpu_login = (cpu_seconds(worker) - cpu0) / args.logins
        wall_login = (time.perf_counter() - t0) / args.logins
        rss_after_logins = rss_mib(worker)

        for _ in range(50):
            call(client, "GET", base + "/")
        cpu0 = cpu_seconds(worker)
        latencies = []
        for _ in range(args.views):
            t = time.perf_counter()
            response = call(client, "GET", base + "/")
            latencies.append(time.perf_counter() - t)
            assert response.status_code == 200
        cpu_view = (cpu_seconds(worker) - cpu0) / args.views

        floor = requests.Session()
        for _ in range(50):
            floor.get(base + "/healthz")
        cpu0 = cpu_seconds(worker)
        for _ in range(args.views):
            floor.get(base + "/healthz")
        cpu_floor = (cpu_seconds(worker) - cpu0) / args.views

        print("| measure | value |")
        print("| --- | ---: |")
        print(f"| database | {env['DATABASE_URL'].split(':')[0]} |")
        print(f"| cache | {env.get('CACHE_URL', 'locmem').split(':')[0]} |")
        print(f"| logins measured | {args.logins} |")
        print(f"| server CPU per login (3 requests) | {cpu_login * 1000:.1f} ms |")
        print(f"| logins/s per core (CPU bound) | {1 / cpu_login:.0f} |")
        print(f"| wall time per login, one client | {wall_login * 1000:.1f} ms |")
        print(f"| dashboard views measured | {args.views} |")
        print(f"| server CPU per warm dashboard view | {cpu_view * 1000:.2f} ms |")
        print(f"| dashboard views/s per core | {1 / cpu_view:.0f} |")
        print(f"| server CPU per /healthz (gunicorn + WSGI floor) | {cpu_floor * 1000:.2f} ms |")
        print(
            f"| median dashboard latency, one client | "
            f"{statistics.median(latencies) * 1000:.2f} ms |"
        )
        print(
            f"| worker RSS after warm-up / after logins | "
            f"{rss_start:.0f} / {rss_after_logins:.0f} MiB |"
        )
    finally:
        server.terminate()
        server.wait(timeout=15)


if __name__ == "__main__":
    main()
