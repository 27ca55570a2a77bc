"""Load: many simulated users for a while; every response >= 500, lost session and transport error.

The server as in production (granian, as the production image runs it:
workers = cores + 1, 4 threads each) with production settings
(benchmarks/stack.py). Each user is a thread with its own cookies and
client IP: half are admins (group root),
half have no screens. A user logs in, then repeats with 0.2-1.5 s think time:
dashboard, users list and search, a user's page, groups, roles, audit log,
own account and sessions; admins now and then create a group and delete it
again; every user logs out and back in now and then. The load generator runs
on the same 2 cores as the server, so latencies include its own CPU use.
"""

from __future__ import annotations

import collections
import os
import random
import re
import statistics
import threading
import time

import requests

from benchmarks import stack
from benchmarks.browser import Browser
from benchmarks.results import Result, Table
from benchmarks.servers import PRODUCTION, THIS_TREE, Server

PASSWORD = "load run passphrase 1"


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_kind: dict[str, list[float]] = collections.defaultdict(list)
        self.statuses: collections.Counter = collections.Counter()
        self.server_errors: list[str] = []
        self.lost_sessions: list[str] = []
        self.transport_errors: list[str] = []

    def record(self, kind: str, seconds: float, status: int, what: str) -> None:
        with self.lock:
            self.by_kind[kind].append(seconds)
            self.statuses[status] += 1
            if status >= 500:
                self.server_errors.append(f"{status} {what}")


class User(threading.Thread):
    def __init__(self, server, email, admin, stats, deadline, rng):
        super().__init__(daemon=True)
        self.server, self.email, self.admin = server, email, admin
        self.stats, self.deadline, self.rng = stats, deadline, rng
        self.browser = Browser(server)

    def call(self, kind: str, method: str, path: str, data=None) -> requests.Response | None:
        t = time.perf_counter()
        try:
            response = self.browser.request(method, path, data)
        except requests.RequestException as exc:
            with self.stats.lock:
                self.stats.transport_errors.append(f"{method} {path}: {type(exc).__name__}")
            return None
        self.stats.record(kind, time.perf_counter() - t, response.status_code, f"{method} {path}")
        return response

    def page(self, kind: str, path: str, allowed: bool = True) -> requests.Response | None:
        response = self.call(kind, "GET", path)
        if response is None:
            return None
        if response.status_code == 302 and "/login/" in response.headers.get("Location", ""):
            with self.stats.lock:
                self.stats.lost_sessions.append(f"{self.email} GET {path}")
            self.login()
        elif response.status_code not in ((200,) if allowed else (403,)):
            with self.stats.lock:
                self.stats.server_errors.append(f"unexpected {response.status_code} GET {path}")
        return response

    def login(self) -> None:
        self.browser = Browser(self.server)
        self.call("login page", "GET", "/login/")
        response = self.call(
            "login POST", "POST", "/login/", {"login": self.email, "password": PASSWORD}
        )
        if response is not None and response.status_code != 302:
            with self.stats.lock:
                self.stats.server_errors.append(f"login refused {response.status_code}")

    def group_round_trip(self) -> None:
        name = f"load-{self.email.split('@')[0]}-{self.rng.randrange(1 << 30)}"
        response = self.call("group create", "POST", "/groups/add/", {"name": name})
        if response is None or response.status_code != 302:
            return
        listing = self.page("groups", "/groups/")
        found = listing is not None and re.search(rf'href="/groups/(\d+)/">{name}<', listing.text)
        if not found:
            with self.stats.lock:
                self.stats.server_errors.append(f"group {name} created but not listed")
            return
        self.call("group delete", "POST", f"/groups/{found[1]}/delete/")

    def run(self) -> None:
        time.sleep(self.rng.uniform(0, 2))  # users arrive over the first seconds
        self.login()
        admin = self.admin
        actions = [
            (30, lambda: self.page("dashboard", "/")),
            (10, lambda: self.page("users list", "/users/", admin)),
            (5, lambda: self.page("users search", "/users/?q=load1", admin)),
            (5, lambda: self.page("groups", "/groups/", admin)),
            (5, lambda: self.page("roles", "/roles/", admin)),
            (5, lambda: self.page("audit log", "/audit/", admin)),
            (5, lambda: self.page("my account", "/account/")),
            (5, lambda: self.page("my sessions", "/account/sessions/")),
        ]
        if admin:
            actions.append((3, self.group_round_trip))
        actions.append((3, self.logout_login))
        weights = [w for w, _ in actions]
        while time.monotonic() < self.deadline:
            self.rng.choices(actions, weights)[0][1]()
            time.sleep(self.rng.uniform(0.2, 1.5))
        # The session must still be there at the end.
        self.page("dashboard", "/")

    def logout_login(self) -> None:
        self.call("logout", "POST", "/logout/")
        self.login()


def add_arguments(parser) -> None:
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--workers", type=int, default=0, help="default: cores + 1")
    parser.add_argument("--server", choices=THIS_TREE, default=PRODUCTION)
    parser.add_argument("--seed", type=int, default=1)
    stack.add_arguments(parser)


def run(args) -> Result:
    env = stack.server_env(stack.backend(args, "load"))
    emails = [f"load{n}@bench.example" for n in range(args.users)]
    users = [(e, PASSWORD, ["root"] if n % 2 == 0 else []) for n, e in enumerate(emails)]
    stack.prepare(env, users=users)
    workers = args.workers or os.cpu_count() + 1
    stats = Stats()
    with Server(args.server, env, workers=workers) as server:
        start = time.monotonic()
        deadline = start + args.seconds
        threads = [
            User(server, email, n % 2 == 0, stats, deadline, random.Random(args.seed + n))
            for n, email in enumerate(emails)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=args.seconds + 120)
        elapsed = time.monotonic() - start
        tracebacks = server.log_text().count("Traceback")
    return report(args, env, server, workers, stats, elapsed, tracebacks)


def report(args, env, server, workers, stats, elapsed, tracebacks) -> Result:
    total = sum(stats.statuses.values())
    table = Table(
        f"{args.users} users, {args.seconds} s, {stack.describe(env)}, "
        f"{server.kind} {workers} workers × 4 threads; {total} requests in {elapsed:.0f} s "
        f"= {total / elapsed:.0f}/s",
        ["request", "count", "median ms", "p95 ms", "max ms"],
    )
    for kind, times in sorted(stats.by_kind.items(), key=lambda kv: -len(kv[1])):
        times.sort()
        p95 = times[max(0, int(len(times) * 0.95) - 1)]
        table.rows.append(
            [
                kind,
                len(times),
                *(f"{t * 1000:.0f}" for t in (statistics.median(times), p95, times[-1])),
            ]
        )
    errors = {
        "responses >= 500": sum(n for s, n in stats.statuses.items() if s >= 500),
        "unexpected answers": len(stats.server_errors),
        "lost sessions": len(stats.lost_sessions),
        "transport errors": len(stats.transport_errors),
        "tracebacks in the server log": tracebacks,
    }
    notes = [
        "statuses: " + ", ".join(f"{s}: {n}" for s, n in sorted(stats.statuses.items())),
        "; ".join(f"{k}: {v}" for k, v in errors.items()),
        *(
            "  " + line
            for line in (stats.server_errors + stats.lost_sessions + stats.transport_errors)[:20]
        ),
    ]
    return Result(
        "load",
        tables=[table],
        figures={"requests": total, "seconds": elapsed, "statuses": dict(stats.statuses), **errors},
        notes=notes,
        failed=any(errors.values()),
    )
