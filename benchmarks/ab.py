"""Compare the server CPU of two versions of the code in the same minutes.

This VM's speed drifts by up to ±40 % from one minute to the next, and
Argon2id (memory-bound) drifts differently from Python code, so two runs of
throughput.py one after the other cannot show a change of 10 %. Here both
versions run at once, each under gunicorn in production settings with its
own database and Redis db, and the clients alternate between them in short
blocks (the order flips every block): each block gives a pair measured under
the same conditions, and the table reports the per-pair ratio.

    .venv/bin/python benchmarks/ab.py fe3a560            # that commit vs this tree
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/iam_ab \\
    CACHE_URL=redis://127.0.0.1:6379/12 .venv/bin/python benchmarks/ab.py fe3a560

With Redis the "before" side uses the next Redis db number.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402
    ROOT,
    Browser,
    Server,
    cpu_seconds,
    create_users,
    describe,
    prepare,
    production_env,
)

EMAIL = "ab@shop.example"
PASSWORD = "a/b bench passphrase 1"


def checkout(ref: str) -> Path:
    """A detached worktree of `ref` in a temporary directory."""
    path = Path(tempfile.mkdtemp()) / "before"
    subprocess.run(
        ["git", "worktree", "add", "--detach", "-q", str(path), ref], cwd=ROOT, check=True
    )
    return path


def side_env(suffix: str, redis_offset: int) -> dict[str, str]:
    env = production_env(IAM_RATE_LOGIN_FAILED="10000/m/ip,10000/m/key")
    url = env["DATABASE_URL"]
    if url.startswith("postgres"):
        env["DATABASE_URL"] = url + "_" + suffix
    else:
        env["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp()}/{suffix}.sqlite3"
    cache = env.get("CACHE_URL", "")
    if cache.startswith("redis"):
        parts = urlsplit(cache)
        db = (int(parts.path.lstrip("/") or 0) + redis_offset) % 16
        env["CACHE_URL"] = parts._replace(path=f"/{db}").geturl()
    return env


def login(base: str) -> Browser:
    browser = Browser(base)
    response = browser.login(EMAIL, PASSWORD)
    assert response.status_code == 302 and response.headers["Location"] == "/", response
    assert browser.get("/").status_code == 200
    return browser


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("before", help="git commit (or branch) to compare this tree with")
    parser.add_argument("--blocks", type=int, default=12)
    parser.add_argument("--logins", type=int, default=10, help="full logins per block")
    parser.add_argument("--views", type=int, default=200, help="dashboard views per block")
    args = parser.parse_args()

    trees = {"before": checkout(args.before), "after": ROOT}
    envs = {"before": side_env("before", 1), "after": side_env("after", 0)}
    servers = {}
    try:
        for side, tree in trees.items():
            prepare(envs[side], root=tree)
            create_users(envs[side], [(EMAIL, PASSWORD, [])], root=tree)
            servers[side] = Server(envs[side], workers=1, root=tree).__enter__()
        workers = {side: server.workers()[0] for side, server in servers.items()}
        browsers = {}
        for side, server in servers.items():
            for _ in range(10):
                login(server.base)
            browsers[side] = login(server.base)
            for _ in range(50):
                browsers[side].get("/")
                browsers[side].get("/healthz")

        cpu = {side: {"login": [], "view": [], "healthz": []} for side in trees}

        def measure(side: str, what: str, count: int, action) -> None:
            start = cpu_seconds(workers[side])
            for _ in range(count):
                action()
            cpu[side][what].append((cpu_seconds(workers[side]) - start) / count)

        for block in range(args.blocks):
            order = ("before", "after") if block % 2 == 0 else ("after", "before")
            for side in order:
                base = servers[side].base
                measure(side, "login", args.logins, lambda base=base: login(base))
            for side in order:
                browser = browsers[side]
                measure(side, "view", args.views, lambda browser=browser: browser.get("/"))
            for side in order:
                browser = browsers[side]
                measure(side, "healthz", args.views, lambda b=browser: b.get("/healthz"))
    finally:
        for server in servers.values():
            server.__exit__(None, None, None)
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(trees["before"])], cwd=ROOT, check=False
        )

    median = statistics.median
    print(f"{describe(envs['after'])}; before = {args.before}, after = this tree; ", end="")
    print(
        f"{args.blocks} blocks of {args.logins} logins, {args.views} views, {args.views} /healthz"
    )
    print("| server CPU per … (median of blocks) | before | after | after / before, median pair |")
    print("| --- | ---: | ---: | ---: |")
    for what, label in (
        ("login", "full login (GET /login/, POST, GET /)"),
        ("view", "warm dashboard view"),
        ("healthz", "/healthz (control: same code on both sides)"),
    ):
        b, a = cpu["before"][what], cpu["after"][what]
        pairs = sorted(x / y for x, y in zip(a, b, strict=True))
        spread = f"{pairs[len(pairs) // 4]:.2f}–{pairs[-1 - len(pairs) // 4]:.2f}"
        print(
            f"| {label} | {median(b) * 1000:.2f} ms | {median(a) * 1000:.2f} ms "
            f"| {median(pairs):.2f} (middle half {spread}) |"
        )


if __name__ == "__main__":
    main()
