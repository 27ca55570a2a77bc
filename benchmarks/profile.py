"""Profile: where a worker's CPU goes (py-spy, GIL-holding samples), for logins and dashboard views.

Needs py-spy (a sampling profiler, in the `test` extra: `make install`).
One worker, production settings; one phase of full logins and one of warm
dashboard views, each sampled 1,000 times a second, only threads
holding the GIL: a thread waiting for PostgreSQL, Redis or a client is not
sampled, and neither is Argon2id, which releases the GIL while it hashes.
Each sample is charged to the file of its innermost Python frame, so C work
that keeps the GIL counts for the Python function that called it. cProfile
misleads here: it inflates deep Python call trees several times.
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks import stack
from benchmarks.browser import Browser, full_login
from benchmarks.results import ROOT, Result, Table
from benchmarks.servers import PRODUCTION, THIS_TREE, Server

# Argon2id is not among them: it releases the GIL while it hashes, so --gil
# sampling does not see it (its cost is the argon2 benchmark's).
CATEGORIES = [
    ("SQL: ORM + driver", ("django/db/", "psycopg", "sqlite3")),
    ("templates", ("django/template", "templatetags")),
    ("cache: Django + redis-py", ("django/core/cache", "/redis/")),
    ("sessions", ("django/contrib/sessions",)),
    ("allauth", ("/allauth/",)),
    ("our code", tuple(f"{ROOT}/{app}/" for app in ("accounts", "backoffice", "sso", "iam"))),
    ("other Django", ("django/",)),
    ("gunicorn", ("gunicorn/",)),
    ("stdlib + other", ("",)),
]
FRAME = re.compile(r"(?P<func>.*) \((?P<path>.*?):\d+\)$")


def category(path: str) -> str:
    return next(label for label, markers in CATEGORIES if any(m in path for m in markers))


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise SystemExit(
            "profile needs py-spy: make install (the test extra), or pip install py-spy"
        )
    return found


def sample(pid: int, seconds: float, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            py_spy(),
            "record", "--pid", str(pid), "--rate", "1000", "--duration", str(int(seconds)),
            "--format", "raw", "--output", str(out), "--nonblocking",
            "--gil",  # only threads running Python: not those waiting on a socket
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def shares(raw: Path) -> tuple[dict[str, float], list[tuple[str, float]], int]:
    by_category: collections.Counter = collections.Counter()
    by_function: collections.Counter = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, count = line.rsplit(" ", 1)
        leaf = FRAME.match(stack.split(";")[-1])
        if leaf is None:
            continue
        n = int(count)
        total += n
        by_category[category(leaf["path"])] += n
        short = leaf["path"].split("site-packages/")[-1].replace(f"{ROOT}/", "")
        by_function[f"{leaf['func']} ({short})"] += n
    return (
        {label: by_category[label] / total * 100 for label, _ in CATEGORIES},
        [(f, n / total * 100) for f, n in by_function.most_common(12)],
        total,
    )


def repeat(action, until: float) -> None:
    while time.monotonic() < until:
        action()


def add_arguments(parser) -> None:
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--server", choices=THIS_TREE, default=PRODUCTION)
    stack.add_arguments(parser)


def profile_phase(worker: int, action, seconds: float, raw: Path) -> tuple:
    """Warm `action` up, then run it while py-spy samples `worker`."""
    for _ in range(20):
        action()
    spy = sample(worker, seconds, raw)
    stop = time.monotonic() + seconds + 1
    runner = threading.Thread(target=repeat, args=(action, stop))
    runner.start()
    spy.wait()
    runner.join()
    return shares(raw)


def run(args) -> Result:
    py_spy()
    env = stack.server_env(stack.backend(args, "profile"))
    stack.prepare(env)
    results = {}
    with Server(args.server, env) as server:
        (worker,) = server.workers()
        viewer = Browser(server).login()
        phases = {
            "login (GET /login/, POST, GET /)": lambda: full_login(server),
            "warm dashboard view": lambda: viewer.get("/"),
        }
        folder = Path(tempfile.mkdtemp())
        for n, (name, action) in enumerate(phases.items()):
            results[name] = profile_phase(worker, action, args.seconds, folder / f"{n}.txt")
    labels = [label for label, _ in CATEGORIES]
    table = Table(
        f"py-spy on one {args.server} worker, {stack.describe(env)}",
        ["request", "samples", *labels],
        [
            [name, total, *(f"{parts[k]:.0f} %" for k in labels)]
            for name, (parts, _, total) in results.items()
        ],
    )
    tops = [
        Table(f"{name}: functions with the most own CPU", ["share", "function"],
              [[f"{share:.1f} %", function] for function, share in top])
        for name, (_, top, _) in results.items()
    ]  # fmt: skip
    figures = {
        name: {"shares": parts, "samples": total} for name, (parts, _, total) in results.items()
    }
    return Result("profile", tables=[table, *tops], figures=figures)
