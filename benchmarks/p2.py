"""P2: a warm dashboard view's CPU against a base commit (target ≤ 0.6×), its SQL and Redis.

The paired A/B of `ab` (A = --base under --base-server, gunicorn unless told,
as the base was deployed; B = this tree under --server, granian, as it is) on
the warm dashboard and /healthz (the
control), then, on B alone, what one view costs the backends, counted by the
backends themselves:
- SQL statements: PostgreSQL's committed transactions for B's database
  (pg_stat_database; every autocommit statement is one), over --count views;
- Redis commands: every command on B's Redis db seen by MONITOR over the same
  views (a pipeline's commands count one each, so this bounds round trips
  from above).
Targets: CPU ratio ≤ 0.6, at most 1 statement and 1 Redis round trip a view.
"""

from __future__ import annotations

import threading
import time
from urllib.parse import urlsplit

from benchmarks import ab, stack
from benchmarks.browser import Browser
from benchmarks.paired import alternate, compare
from benchmarks.results import Result, Table, ratio_text
from benchmarks.servers import KINDS, PRODUCTION, THIS_TREE

TARGETS = {"cpu_ratio": 0.6, "sql": 1, "redis": 1}
STATS_DELAY = 11.0


def add_arguments(parser) -> None:
    parser.add_argument("--base", default="ee5f1c5", help="commit to compare with (%(default)s)")
    parser.add_argument("--server", choices=THIS_TREE, default=PRODUCTION, help="of this tree")
    parser.add_argument(
        "--base-server", choices=KINDS, default="gunicorn", help="of the base (%(default)s)"
    )
    parser.add_argument("--blocks", type=int, default=12)
    parser.add_argument("--views", type=int, default=200, help="page views per block")
    parser.add_argument("--tls", action="store_true", help="the servers terminate TLS")
    parser.add_argument("--count", type=int, default=500, help="views counted for SQL and Redis")
    parser.add_argument(
        "--stats-delay",
        type=float,
        default=STATS_DELAY,
        help="seconds to wait for PostgreSQL's statistics before and after counting "
        "(%(default)s: its idle backends report every 10 s; less only for a smoke run)",
    )
    stack.add_arguments(parser)


def run(args) -> Result:
    if args.sqlite:
        raise SystemExit("p2 counts PostgreSQL statements and Redis commands: drop --sqlite")
    args.pages, args.servers, args.logins = "dashboard,healthz", [args.base_server, args.server], 0
    with ab.paired_servers(args, "p2") as (sides, servers, hellos, envs):
        phases = ab.page_phases(["dashboard", "healthz"], servers, hellos, args)
        ab.warm_up(phases, sides)
        cpu = alternate(sides, phases, args.blocks)
        b = sides[1].label
        sql, redis_commands = count_backend_calls(servers[b], envs[b], args.count, args.stats_delay)
    table, figures = compare(cpu, phases, sides[0].label, b)
    ratio = figures["dashboard"]["b_over_a"]
    verdicts = {
        "cpu_ratio": ratio["median"] <= TARGETS["cpu_ratio"],
        "sql": sql <= TARGETS["sql"] + 0.05,
        "redis": redis_commands <= TARGETS["redis"] + 0.05,
    }
    summary = Table(
        "P2",
        ["measure", "value", "target", "verdict"],
        [
            ["dashboard CPU, B / A, per pair", ratio_text(ratio), "≤ 0.6"],
            ["SQL statements per warm view (PostgreSQL's count)", f"{sql:.2f}", "≤ 1"],
            ["Redis commands per warm view (MONITOR)", f"{redis_commands:.2f}", "≤ 1"],
        ],
    )
    for row, met in zip(summary.rows, verdicts.values(), strict=True):
        row.append("met" if met else "not met")
    return Result(
        "p2",
        tables=[table, summary],
        figures={
            "a": sides[0].label,
            "b": b,
            **figures,
            "sql_per_view": sql,
            "redis_commands_per_view": redis_commands,
            "targets": TARGETS,
            "met": verdicts,
        },
        failed=False,
    )


def count_backend_calls(
    server, env: dict[str, str], views: int, stats_delay: float = STATS_DELAY
) -> tuple[float, float]:
    """(SQL statements, Redis commands) per warm dashboard view on `server`."""
    import psycopg
    import redis

    browser = Browser(server).login()
    for _ in range(20):
        browser.get("/")
    database = urlsplit(env["DATABASE_URL"]).path.lstrip("/")
    admin_url = urlsplit(env["DATABASE_URL"])._replace(path="/postgres").geturl()
    cache = redis.Redis.from_url(env["CACHE_URL"])
    db = cache.connection_pool.connection_kwargs.get("db", 0)
    seen = []
    stop = f"p2-stop-{time.monotonic_ns()}"

    def monitor() -> None:
        with cache.monitor() as m:
            ready.set()
            for command in m.listen():
                if stop in command["command"]:
                    return
                if command["db"] == db:
                    seen.append(command["command"])

    ready = threading.Event()
    listener = threading.Thread(target=monitor, daemon=True)
    listener.start()
    ready.wait(5)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        committed = (
            "SELECT xact_commit FROM pg_stat_database WHERE datname = %s",
            [database],
        )
        # An idle backend may hold its statistics back for up to 10 s
        # (PostgreSQL's PGSTAT_IDLE_INTERVAL) before they reach pg_stat_database.
        time.sleep(stats_delay)
        conn.execute("SELECT pg_stat_clear_snapshot()")
        before = conn.execute(*committed).fetchone()[0]
        for _ in range(views):
            browser.get("/")
        time.sleep(stats_delay)
        conn.execute("SELECT pg_stat_clear_snapshot()")
        after = conn.execute(*committed).fetchone()[0]
    redis.Redis.from_url(env["CACHE_URL"]).echo(stop)
    listener.join(10)
    return (after - before) / views, len(seen) / views
