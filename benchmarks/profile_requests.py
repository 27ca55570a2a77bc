"""Where a gunicorn worker's CPU goes, for logins and for dashboard views.

    .venv/bin/pip install py-spy      # the sampling profiler, not a test dependency
    .venv/bin/python benchmarks/profile_requests.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/iam_prof CACHE_URL=redis://127.0.0.1:6379/8 \\
        .venv/bin/python benchmarks/profile_requests.py

Runs the app under gunicorn (one worker, production settings), drives one
phase of full logins and one of warm dashboard views, and samples the worker
with py-spy (1,000 samples/s, only threads holding the GIL: a thread waiting
for PostgreSQL, Redis or a client is not sampled, and neither is Argon2id,
which releases the GIL while it hashes). Each sample is charged to the file
of its innermost Python frame, so C work that keeps the GIL (str.join, the
socket writes) counts for the Python function that called it. A sampling
profiler does not slow the code down the way cProfile does (which inflates
deep Python call trees against C code several times), so the shares are the
real ones.
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

from harness import ROOT, Browser, Server, create_users, describe, prepare, production_env

EMAIL, PASSWORD = "profile@shop.example", "profile run passphrase 1"

# Argon2id is not among them: it releases the GIL while it hashes, so --gil
# sampling does not see it (its cost is benchmarks/throughput.py's).
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


def sample(pid: int, seconds: float, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            shutil.which("py-spy") or str(Path(__file__).parent.parent / ".venv/bin/py-spy"),
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()

    env = production_env(
        IAM_MFA_REQUIRED_GROUPS="", IAM_RATE_LOGIN_FAILED="100000/m/ip,100000/m/key"
    )
    prepare(env)
    create_users(env, [(EMAIL, PASSWORD, [])])
    results = {}
    with Server(env, workers=1) as server:
        (worker,) = server.workers()

        def login() -> Browser:
            browser = Browser(server.base)
            assert browser.login(EMAIL, PASSWORD).status_code == 302
            assert browser.get("/").status_code == 200
            return browser

        viewer = login()
        phases = {
            "login (GET /login/, POST, GET /)": login,
            "warm dashboard view": lambda: viewer.get("/"),
        }
        for name, action in phases.items():
            for _ in range(20):
                action()
            raw = Path(f"/tmp/profile-{worker}-{len(results)}.txt")
            spy = sample(worker, args.seconds, raw)
            stop = time.monotonic() + args.seconds + 1
            runner = threading.Thread(
                target=lambda a=action, s=stop: [
                    a() for _ in iter(lambda: time.monotonic() < s, False)
                ]
            )
            runner.start()
            spy.wait()
            runner.join()
            results[name] = shares(raw)

    labels = [label for label, _ in CATEGORIES]
    print(f"py-spy on one gunicorn worker, {describe(env)}")
    print("| request | samples | " + " | ".join(labels) + " |")
    print("| --- | ---: |" + " ---: |" * len(labels))
    for name, (parts, _, total) in results.items():
        print(f"| {name} | {total} | " + " | ".join(f"{parts[k]:.0f} %" for k in labels) + " |")
    for name, (_, top, _) in results.items():
        print(f"\n{name}: functions with the most own CPU")
        for function, share in top:
            print(f"  {share:5.1f} %  {function}")


if __name__ == "__main__":
    main()
