"""Audit trail at 10M events: each filter's first page vs at 100k; a 1M-event export's memory.

Targets (issue 24, part 5): every filter and combination answers its first
page with the same SQL statements at 10,000,000 events as at 100,000 and
within 2× the time, measured in the same run; a CSV export of 1,000,000
events grows the serving worker's RSS by under 50 MiB.

PostgreSQL only (seeding uses generate_series). Each size has a database of
its own, <--postgres>_audit_scale_<size>, made from the migrated template
and kept between runs: a table `audit_scale_seed` records what was loaded,
so a rerun skips the load (minutes at ten million) and only migrates
(`--reload` loads again). The events are realistic in shape: 20,000 actors
and 50,000 targets (a few very busy, most rare), the 83 action codes with a
skewed share (logins first), 2 % failures, six channels, request ids, and
two years of times in insertion order, as a real trail grows.

Each page of the audit screen is then rendered in-process through Django's
test client as an admin of group root, at both sizes in alternating blocks
(two connections, one per database), warm; every SQL statement of the
request is counted and the median time taken. The export is served by the
production server (granian, one worker), logged in through the real login,
and streamed whole by a client while the worker's RSS is read from /proc.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

from benchmarks import stack
from benchmarks.results import Result, Table

ACTORS, TARGETS, DAYS = 20_000, 50_000, 730
# The busiest codes first; the rest follow in code order (accounts.audit).
BUSY = ["login.succeeded", "logout", "session.expired", "api.token.issued", "login.failed"]
# Expressions of each column (g: the row's number, n: the size). Every other
# column gets its model field's default (users_list.insert_sql).
COLUMNS = {
    "created_at": "%(end)s::timestamptz - (%(n)s - g) * (interval '1 day' * %(days)s / %(n)s)",
    "actor_label": "'user' || floor(%(actors)s * power(random(), 3))::int || '@bench.example'",
    "channel": "(ARRAY['web','web','web','web','web','web','web','web','api','scim','sso',"
    "'cli'])[1 + floor(random() * 12)::int]",
    "action": "(%(actions)s::text[])[1 + floor(%(n_actions)s * power(random(), 4))::int]",
    "target_type": "'user'",
    "target_id": "(floor(%(targets)s * power(random(), 2))::int)::text",
    "target_label": "'target' || floor(%(targets)s * power(random(), 2))::int || '@bench.example'",
    "ip": "('10.' || (g %% 251) || '.' || (g %% 241) || '.' || (g %% 239))::inet",
    "user_agent": "'Mozilla/5.0 (X11; Linux x86_64) bench'",
    "outcome": "CASE WHEN random() < 0.02 THEN 'failure' ELSE 'success' END",
    "details": "jsonb_build_object('via', 'benchmark', 'n', g)",
    "request_id": "CASE WHEN g %% 10 < 7 THEN md5(g::text) ELSE '' END",
}


def add_arguments(parser) -> None:
    parser.add_argument("--small", type=int, default=100_000, help="events (default %(default)s)")
    parser.add_argument("--large", type=int, default=10_000_000, help="events")
    parser.add_argument("--rounds", type=int, default=15, help="timed requests per page and size")
    parser.add_argument("--no-export", dest="export_run", action="store_false", help="pages only")
    parser.add_argument(
        "--export", type=int, default=1_000_000, help="about this many events exported (large)"
    )
    parser.add_argument("--reload", action="store_true", help="load the events again")
    parser.add_argument(
        "--no-check",
        dest="check",
        action="store_false",
        help="report the pages without failing on their targets (smoke sizes: a rare filter "
        "finds nothing among 2,000 events, which saves a statement, and a few ms say nothing)",
    )
    stack.add_arguments(parser)


def database_url(args, size: int) -> str:
    return f"{args.postgres}_audit_scale_{size}"


def ensure_database(env: dict, url: str, reload: bool) -> None:
    """The size's database, made from the migrated template when missing
    (or when --reload), then migrated (a new migration runs on the kept
    events, as it would in production)."""
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    if not name.startswith("iam_") or "_audit_scale_" not in name:
        raise SystemExit(f"refusing to manage {name!r}: not an audit-scale database")
    made = stack.template({**env, "DATABASE_URL": url})
    admin = urlsplit(url)._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if reload and exists:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        if reload or not exists:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{made}"')
    stack.manage({**env, "DATABASE_URL": url}, "migrate", "-v0")


def seeded(url: str) -> tuple[int, object]:
    """(events loaded, the day of the newest) as audit_scale_seed records it."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS audit_scale_seed (events bigint NOT NULL, newest date)"
        )
        row = conn.execute("SELECT events, newest FROM audit_scale_seed").fetchone()
    return row or (0, None)


def load(url: str, size: int) -> float:
    """`size` events by one INSERT … SELECT generate_series, the table's
    indexes dropped meanwhile and built again after (much faster than
    maintaining nine indexes row by row), then VACUUM ANALYZE (statistics,
    and the visibility map that index-only counts need)."""
    import psycopg

    from accounts.audit import KNOWN_ACTIONS
    from accounts.models import AuditEvent
    from benchmarks.users_list import insert_sql

    actions = BUSY + [a for a in KNOWN_ACTIONS if a not in BUSY]
    newest = _today() - timedelta(days=1)
    started = time.perf_counter()
    sql, params = insert_sql(AuditEvent, COLUMNS, "FROM generate_series(1, %(n)s) AS g")
    params.update(
        n=size,
        days=DAYS,
        end=newest.isoformat(),
        actors=ACTORS,
        targets=TARGETS,
        actions=actions,
        n_actions=len(actions),
    )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET statement_timeout = 0")
        conn.execute("SET maintenance_work_mem = '256MB'")
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'accounts_auditevent'"
            " AND indexname <> 'accounts_auditevent_pkey'"
        ).fetchall()
        with conn.transaction():
            # Django's foreign keys are deferred: their pending checks would
            # forbid CREATE INDEX in the same transaction.
            conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
            conn.execute("TRUNCATE accounts_auditevent, audit_scale_seed")
            for name, _definition in indexes:
                conn.execute(f'DROP INDEX "{name}"')
            conn.execute(sql, params)  # its `%%` is psycopg's literal % too
            for _name, definition in indexes:
                conn.execute(definition)
            conn.execute("INSERT INTO audit_scale_seed VALUES (%s, %s)", [size, newest])
        conn.execute("VACUUM ANALYZE accounts_auditevent")
    return time.perf_counter() - started


def _today():
    from django.utils import timezone

    return timezone.now().date()


def setup_django(args):
    """Django in this process; one connection per size (`wrappers`)."""
    if args.sqlite:
        raise SystemExit("audit-scale seeds with PostgreSQL's generate_series: drop --sqlite")
    import os

    sizes = [args.small, args.large]
    urls = {size: database_url(args, size) for size in sizes}
    env = stack.server_env({"DATABASE_URL": urls[args.small], "CACHE_URL": args.redis})
    os.environ.update(env)
    import django

    django.setup()
    import redis

    redis.Redis.from_url(args.redis).flushdb()
    notes = []
    for size in sizes:
        ensure_database(env, urls[size], args.reload)
        if seeded(urls[size])[0] != size:
            took = load(urls[size], size)
            notes.append(f"loaded {size:,} events in {took:.0f} s")
        else:
            notes.append(f"{size:,} events: loaded before (audit_scale_seed), kept")
    return env, urls, notes


def wrapper(url: str):
    """A Django connection to `url`, with the settings of `default`."""
    from django.db import connections

    default = connections["default"]
    settings_dict = {**default.settings_dict, "NAME": urlsplit(url).path.lstrip("/")}
    return default.__class__(settings_dict, "default")


def admin_in(conn) -> object:
    """The benchmark's root admin of this database (made once, with a password
    for the served export's login)."""
    from django.db import connections

    from accounts.audit import Actor
    from accounts.models import User
    from accounts.selectors import groups_by_names
    from accounts.services import user_create

    connections["default"] = conn
    user = User.objects.filter(email=stack.ADMIN).first()
    if user is None:
        user = user_create(
            email=stack.ADMIN,
            first_name="Root",
            last_name="Bench",
            password=stack.PASSWORD,
            groups=groups_by_names(["root"]),
            by=Actor.system(label="benchmark"),
            via="benchmark",
        )
    return user


def pages(newest) -> list[tuple[str, dict]]:
    """Each filter and combinations of them, with values a reader would use
    (a busy and a rarer action, a whole address and a beginning, a day to half
    a year), chosen so that each fills its first page at the small size too:
    a page of 3 rows against one of 50 would compare rendering, not finding."""

    def days(first: int, last: int) -> dict:
        return {"since": newest - timedelta(days=first), "until": newest - timedelta(days=last)}

    day, week, month = days(100, 100), days(106, 100), days(60, 31)
    quarter, half = days(120, 31), days(213, 31)
    actor, target, busy = "user1@bench.example", "target0@bench.example", "login.succeeded"
    return [
        ("first page", {}),
        ("actor (address)", {"actor": actor}),
        ("actor (beginning)", {"actor": "user1234"}),
        ("action (busy)", {"action": busy}),
        ("action (rarer)", {"action": "role.deleted"}),
        ("action (prefix)", {"action": "mfa."}),
        ("target (address)", {"target": target}),
        ("target (beginning)", {"target": "target43"}),
        ("a month", month),
        ("a day", day),
        ("outcome failure", {"outcome": "failure"}),
        ("channel cli", {"channel": "cli"}),
        ("actor + action", {"actor": actor, "action": busy}),
        ("actor + quarter", {"actor": actor, **quarter}),
        ("action + failure", {"action": "login.failed", "outcome": "failure"}),
        ("action + week", {"action": busy, **week}),
        ("target + action", {"target": target, "action": busy}),
        ("failure + month", {"outcome": "failure", **month}),
        ("channel + action", {"channel": "api", "action": "api.token.issued"}),
        ("all of them", {"actor": actor, "action": busy, "outcome": "success", **half}),
        ("page 20", {"page": 20}),
    ]


def measure(client, conn, path: str, rounds: int) -> tuple[int, list[float]]:
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    connections["default"] = conn
    times, counts = [], []
    for _ in range(rounds):
        with CaptureQueriesContext(conn) as queries:
            t0 = time.perf_counter()
            response = client.get(path, secure=True)
            times.append(time.perf_counter() - t0)
        if response.status_code != 200:
            raise SystemExit(f"{path}: {response.status_code}")
        counts.append(len(queries.captured_queries))
    # The fewest: a round may add the session's own periodic statements
    # (its activity stamp), which do not depend on the audit trail.
    return min(counts), times


def screen(args, urls) -> tuple[Table, list, bool]:
    from django.test import Client

    sizes = [args.small, args.large]
    conns = {size: wrapper(urls[size]) for size in sizes}
    clients = {}
    for size in sizes:
        clients[size] = Client()
        clients[size].force_login(admin_in(conns[size]))
    from django.db import connections

    newest = min(seeded(urls[size])[1] for size in sizes)
    table = Table(
        "audit screen, first page of each filter, in-process (PostgreSQL)",
        [
            "filter",
            f"SQL at {args.small:,}",
            f"SQL at {args.large:,}",
            f"median ms at {args.small:,}",
            f"median ms at {args.large:,}",
            "ratio",
            "verdict",
        ],
    )
    figures, failed = [], False
    for label, query in pages(newest):
        path = "/audit/" + (f"?{urlencode(query)}" if query else "")
        times = {size: [] for size in sizes}
        for size in sizes:  # warm: the session, plans, caches, pages of the index
            connections["default"] = conns[size]
            for _ in range(2):
                clients[size].get(path, secure=True)
        # Alternating requests, so a busier moment of the machine hits both.
        counts = {size: [] for size in sizes}
        for _ in range(args.rounds):
            for size in sizes:
                statements, taken = measure(clients[size], conns[size], path, 1)
                counts[size].append(statements)
                times[size] += taken
        sql = {size: min(counts[size]) for size in sizes}
        median = {size: statistics.median(times[size]) * 1000 for size in sizes}
        ratio = median[args.large] / median[args.small]
        ok = sql[args.small] == sql[args.large] and ratio <= 2
        failed |= not ok and args.check
        table.rows.append(
            [
                f"{label} `{path}`",
                sql[args.small],
                sql[args.large],
                f"{median[args.small]:.1f}",
                f"{median[args.large]:.1f}",
                f"{ratio:.2f}",
                "met" if ok else "NOT met",
            ]
        )
        figures.append(
            {
                "filter": label,
                "path": path,
                "sql": [sql[args.small], sql[args.large]],
                "median_ms": [median[args.small], median[args.large]],
                "ratio": ratio,
                "met": ok,
            }
        )
    connections["default"] = conns[args.small]
    for conn in conns.values():
        conn.close()
    return table, figures, failed


def export(args, env, urls) -> tuple[Table, dict, bool]:
    """The CSV of about --export events (the last days of the large trail)
    streamed whole from one granian worker; its RSS sampled every 50 ms."""
    from benchmarks.browser import Browser
    from benchmarks.procs import rss_mib
    from benchmarks.servers import PRODUCTION, Server

    days = max(1, math.ceil(args.export / args.large * DAYS))
    since = seeded(urls[args.large])[1] - timedelta(days=days - 1)
    path = f"/audit/export.csv?since={since.isoformat()}"
    server_env = {**env, "DATABASE_URL": urls[args.large], "GRANIAN_WORKERS_LIFETIME": ""}
    with Server(PRODUCTION, server_env) as server:
        (worker,) = server.workers()
        browser = Browser(server, timeout=600).login()
        browser.get("/audit/")
        browser.get("/audit/export.csv?action=role.deleted")  # warm the export's code
        expected = _count_since(urls[args.large], since)  # with the login's events
        baseline = rss_mib(worker)
        peak, stop = [baseline], threading.Event()

        def sample():
            while not stop.is_set():
                peak.append(rss_mib(worker))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        cookies = "; ".join(f"{c.name}={c.value}" for c in browser.http.cookies)
        started = time.perf_counter()
        first_byte, size, lines = None, 0, 0
        try:
            with browser.http.get(
                server.base + path, headers={"Cookie": cookies}, stream=True, timeout=600
            ) as response:
                if response.status_code != 200:
                    raise SystemExit(f"export: {response.status_code}")
                for chunk in response.iter_content(chunk_size=1 << 16):
                    if first_byte is None:
                        first_byte = time.perf_counter() - started
                    size += len(chunk)
                    lines += chunk.count(b"\n")
        finally:
            stop.set()
            sampler.join()
        took = time.perf_counter() - started
        after = rss_mib(worker)
    rows = lines - 1  # the header
    growth = max(peak) - baseline
    ok = rows == expected and growth < 50
    table = Table(
        f"CSV export of the last {days} days of {args.large:,} events, one granian worker "
        "(PostgreSQL / Redis)",
        ["measure", "value"],
        [
            ["rows exported (expected)", f"{rows:,} ({expected:,})"],
            ["bytes", f"{size / 2**20:.0f} MiB"],
            ["first byte after", f"{first_byte or 0:.1f} s"],
            ["whole export", f"{took:.1f} s"],
            ["worker RSS before", f"{baseline:.1f} MiB"],
            ["worker RSS peak while streaming", f"{max(peak):.1f} MiB"],
            ["worker RSS after", f"{after:.1f} MiB"],
            ["growth (target < 50 MiB)", f"{growth:.1f} MiB: {'met' if ok else 'NOT met'}"],
        ],
    )
    figures = {
        "rows": rows,
        "expected": expected,
        "bytes": size,
        "seconds": took,
        "first_byte_s": first_byte,
        "rss_before_mib": baseline,
        "rss_peak_mib": max(peak),
        "growth_mib": growth,
        "met": ok,
    }
    return table, figures, not ok


def _count_since(url: str, since) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("SET statement_timeout = 0")
        return conn.execute(
            "SELECT count(*) FROM accounts_auditevent"
            " WHERE created_at >= (%s::date)::timestamp AT TIME ZONE 'UTC'",
            [since.isoformat()],
        ).fetchone()[0]


def run(args) -> Result:
    if args.small >= args.large:
        raise SystemExit("--small must be below --large")
    env, urls, notes = setup_django(args)
    pages_table, page_figures, pages_failed = screen(args, urls)
    export_table, export_figures, export_failed = None, None, False
    if args.export_run:
        export_table, export_figures, export_failed = export(args, env, urls)
    verdict = "every filter: same statements, ≤ 2×" if not pages_failed else "NOT met"
    notes.insert(0, f"screen: {verdict}")
    return Result(
        "audit-scale",
        tables=[t for t in (pages_table, export_table) if t],
        figures={
            "pages": page_figures,
            "export": export_figures,
            "sizes": [args.small, args.large],
        },
        notes=notes,
        failed=pages_failed or export_failed,
    )
