"""Memory: a worker's resident memory as logins pile up (after 10,000 within 10 % of after 1,000).

One worker, its RSS read from /proc, recycling off (granian's workers
lifetime unset) so the same process is measured throughout. --clients
browsers log in (GET /login/, POST, GET /) in turn as 50 users from distinct
client IPs, each login a new session.
"""

from __future__ import annotations

import threading
import time

from benchmarks import stack
from benchmarks.browser import Browser
from benchmarks.procs import rss_mib
from benchmarks.results import Result, Table
from benchmarks.servers import PRODUCTION, THIS_TREE, Server

USERS = [f"mem{n}@bench.example" for n in range(50)]
CHECKPOINTS = (100, 1000, 2000, 5000, 10000, 20000, 50000)


def add_arguments(parser) -> None:
    parser.add_argument("--logins", type=int, default=10000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--server", choices=THIS_TREE, default=PRODUCTION)
    stack.add_arguments(parser)


def run(args) -> Result:
    env = stack.server_env(stack.backend(args, "memory"), GRANIAN_WORKERS_LIFETIME="")
    stack.prepare(env, users=[(email, stack.PASSWORD, []) for email in USERS])
    done, failures = 0, []
    lock = threading.Lock()
    marks = [m for m in CHECKPOINTS if m <= args.logins]
    with Server(args.server, env) as server:
        (worker,) = server.workers()
        start = time.monotonic()
        readings = [(0, rss_mib(worker), 0.0)]

        def client(n: int) -> None:
            nonlocal done
            while True:
                with lock:
                    if done >= args.logins:
                        return
                try:
                    Browser(server).login(USERS[n % len(USERS)], stack.PASSWORD).close()
                except AssertionError as exc:
                    failures.append(str(exc))
                n += args.clients
                with lock:
                    done += 1
                    if marks and done >= marks[0]:
                        readings.append((marks.pop(0), rss_mib(worker), time.monotonic() - start))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    table = Table(
        f"{args.logins} logins, {stack.describe(env)}, one {server.kind} worker, recycling off",
        ["logins", "worker RSS", "elapsed"],
        [[f"{n:,}", f"{rss:.1f} MiB", f"{t:.0f} s"] for n, rss, t in readings],
    )
    by_count = {n: rss for n, rss, _ in readings}
    figures = {"rss_mib": by_count, "failed_logins": len(failures)}
    notes = [f"failed logins: {len(failures)}"]
    if 1000 in by_count and args.logins in by_count:
        growth = (by_count[args.logins] - by_count[1000]) / by_count[1000] * 100
        figures["growth_after_1000_percent"] = growth
        notes.insert(0, f"RSS after {args.logins:,} vs after 1,000 logins: {growth:+.1f} %")
    return Result("memory", tables=[table], figures=figures, notes=notes, failed=bool(failures))
