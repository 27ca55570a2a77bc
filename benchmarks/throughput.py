"""Server CPU per password login and per dashboard view, under gunicorn.

    .venv/bin/python benchmarks/throughput.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/iam_tp CACHE_URL=redis://127.0.0.1:6379/12 \\
        .venv/bin/python benchmarks/throughput.py

One gunicorn worker (so its CPU time is the requests'), production settings
(benchmarks/harness.py), real HTTP clients on loopback. A login is GET
/login/, POST the credentials, GET /. CPU is the worker's user+system time
from /proc before and after each phase. Compare the login figure with
benchmarks/argon2_verify.py. `--set NAME=VALUE` passes a setting to the
server (e.g. GUNICORN_THREADS=1) to compare.
"""

import argparse
import statistics
import subprocess
import sys
import time

from argon2 import PasswordHasher
from harness import (
    ROOT,
    Browser,
    Server,
    cpu_seconds,
    create_users,
    describe,
    prepare,
    production_env,
    rss_mib,
)

EMAIL = "bench@shop.example"
PASSWORD = "throughput bench passphrase 1"


def measure_in_process() -> None:
    """Run in a subprocess with the server's environment (see in_process)."""
    import io
    import os
    import sys

    import django

    sys.path.insert(0, str(ROOT))
    django.setup()
    from django.core.wsgi import get_wsgi_application
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.post("/login/", {"login": EMAIL, "password": PASSWORD}, secure=True)
    client.get("/", secure=True)
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/", secure=True).status_code == 200
    count = len(queries)  # now: every request through the WSGI app resets the log
    app = get_wsgi_application()
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "443",
        "HTTP_HOST": "testserver",
        "HTTP_COOKIE": "; ".join(f"{k}={v.value}" for k, v in client.cookies.items()),
        "REMOTE_ADDR": "127.0.0.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "https",
        "wsgi.errors": sys.stderr,
    }
    statuses = []

    def view():
        body = app({**environ, "wsgi.input": io.BytesIO()}, lambda s, h: statuses.append(s))
        b"".join(body)

    rounds = []
    for _ in range(6):
        t = time.process_time()
        for _ in range(500):
            view()
        rounds.append((time.process_time() - t) / 500)
    assert set(statuses) == {"200 OK"}, set(statuses)
    os.write(1, f"{count} {statistics.median(rounds[1:])}\n".encode())


def in_process(env) -> tuple[int, float]:
    """Django's own share, without gunicorn: the same settings, the WSGI app
    called directly. Returns (ORM queries per view, CPU seconds per view)."""
    result = subprocess.run(
        [sys.executable, __file__, "--in-process"],
        env={**env, "DJANGO_ALLOWED_HOSTS": "testserver"},
        capture_output=True,
        text=True,
        check=True,
    )
    queries, cpu = result.stdout.split()[-2:]
    return int(queries), float(cpu)


def postgres_statements(env) -> int:
    """Transactions PostgreSQL has committed in this database (each statement
    in autocommit is one): counts what the ORM log does not, such as the
    connection health check."""
    import psycopg

    time.sleep(1.0)  # statistics reach pg_stat_database within a second
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        return conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--logins", type=int, default=300)
    parser.add_argument("--views", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5, help="each phase split in rounds")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_process:
        return measure_in_process()

    env = production_env(IAM_RATE_LOGIN_FAILED="10000/m/ip,10000/m/key")
    env.update(item.split("=", 1) for item in args.set)
    on_postgres = env["DATABASE_URL"].startswith("postgres")
    prepare(env)
    create_users(env, [(EMAIL, PASSWORD, [])])

    steps = {"GET /login/": [], "POST /login/": [], "GET /": []}

    def login(base, worker: int | None = None) -> Browser:
        """A full login; with `worker`, the CPU of each of its requests too."""
        browser = Browser(base)
        marks = [cpu_seconds(worker)] if worker else []
        browser.get("/login/")
        marks += [cpu_seconds(worker)] if worker else []
        response = browser.post("/login/", {"login": EMAIL, "password": PASSWORD})
        assert response.status_code == 302 and response.headers["Location"] == "/", response
        marks += [cpu_seconds(worker)] if worker else []
        assert browser.get("/").status_code == 200
        marks += [cpu_seconds(worker)] if worker else []
        for step, before, after in zip(steps, marks, marks[1:], strict=False):
            steps[step].append(after - before)
        return browser

    hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
    encoded = hasher.hash(PASSWORD)
    argon2_rounds = []

    def per_round(worker: int, count: int, action) -> list[float]:
        """CPU seconds per action in each round. This VM's CPU time varies
        from round to round (other tenants), so the table gives the median
        round and the best one, and each round also times Argon2id
        verifications here (same parameters) for the ratio."""
        results = []
        for _ in range(args.rounds):
            cpu0 = cpu_seconds(worker)
            for _ in range(count // args.rounds):
                action()
            results.append((cpu_seconds(worker) - cpu0) / (count // args.rounds))
            t0 = time.process_time()
            for _ in range(10):
                hasher.verify(encoded, PASSWORD)
            argon2_rounds.append((time.process_time() - t0) / 10)
        return results

    with Server(env, workers=1) as server:
        (worker,) = server.workers()
        for _ in range(20):
            login(server.base)
        rss_start = rss_mib(worker)
        t0 = time.perf_counter()
        cpu_login = per_round(worker, args.logins, lambda: login(server.base, worker))
        ratios = [c / a for c, a in zip(cpu_login, argon2_rounds, strict=True)]
        wall_login = (time.perf_counter() - t0) / args.logins
        rss_logins = rss_mib(worker)

        browser = login(server.base)
        for _ in range(50):
            browser.get("/")
        statements0 = postgres_statements(env) if on_postgres else 0
        latencies = []

        def view():
            t = time.perf_counter()
            assert browser.get("/").status_code == 200
            latencies.append(time.perf_counter() - t)

        cpu_view = per_round(worker, args.views, view)
        statements = (
            (postgres_statements(env) - statements0) / len(latencies) if on_postgres else None
        )

        floor = Browser(server.base)
        for _ in range(50):
            floor.get("/healthz")
        cpu_floor = per_round(worker, args.views, lambda: floor.get("/healthz"))

    with Server(env, workers=1, app="benchmarks.hello_wsgi") as server:
        (worker,) = server.workers()
        hello = Browser(server.base)
        for _ in range(50):
            hello.get("/healthz")
        cpu_hello = per_round(worker, args.views, lambda: hello.get("/healthz"))

    queries, cpu_in_process = in_process(env)
    median = statistics.median
    rows = [
        ("database / cache", describe(env)),
        ("settings passed (--set)", ", ".join(args.set) or "none"),
        ("logins measured", args.logins),
        (
            "server CPU per login (3 requests), median / best round",
            f"{median(cpu_login) * 1000:.1f} / {min(cpu_login) * 1000:.1f} ms",
        ),
        (
            "one Argon2id verification in the same rounds, median",
            f"{median(argon2_rounds[: args.rounds]) * 1000:.1f} ms",
        ),
        ("login CPU / Argon2id verification, median of rounds", f"{median(ratios):.2f}"),
        (
            "of a login: GET /login/ / POST / GET / (mean)",
            " / ".join(f"{sum(v) / len(v) * 1000:.1f}" for v in steps.values()) + " ms",
        ),
        ("logins/s per core (CPU bound, median round)", f"{1 / median(cpu_login):.0f}"),
        ("wall time per login, one client", f"{wall_login * 1000:.1f} ms"),
        ("dashboard views measured", args.views),
        (
            "server CPU per warm dashboard view, median / best round",
            f"{median(cpu_view) * 1000:.2f} / {min(cpu_view) * 1000:.2f} ms",
        ),
        ("dashboard views/s per core (median round)", f"{1 / median(cpu_view):.0f}"),
        (
            "the same view in-process, no gunicorn (Django's share), median",
            f"{cpu_in_process * 1000:.2f} ms",
        ),
        ("SQL queries per dashboard view (Django's log)", queries),
        (
            "PostgreSQL statements per view (incl. connection check)",
            f"{statements:.2f}" if statements is not None else "n/a",
        ),
        (
            "server CPU per /healthz (gunicorn + WSGI floor), median / best",
            f"{median(cpu_floor) * 1000:.2f} / {min(cpu_floor) * 1000:.2f} ms",
        ),
        (
            "server CPU per request of a 2-byte WSGI app, same gunicorn (its own floor)",
            f"{median(cpu_hello) * 1000:.2f} / {min(cpu_hello) * 1000:.2f} ms",
        ),
        ("median dashboard latency, one client", f"{statistics.median(latencies) * 1000:.2f} ms"),
        ("worker RSS after warm-up / after logins", f"{rss_start:.0f} / {rss_logins:.0f} MiB"),
    ]
    print("| measure | value |\n| --- | ---: |")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
