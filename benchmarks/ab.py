"""Paired A/B: server CPU per request of two trees and/or two servers, in the same minutes.

A is BASE (a commit, a branch, or a path; "." is this tree) served by the
first of --servers; B is this tree served by the second. Both run at once,
one worker each with 4 threads, each with its own database and Redis db,
and the clients alternate between them in short blocks, the order flipped
every block (benchmarks/paired.py). CPU is each server's whole process tree.

Pages: login (a full password login by a new browser: GET /login/, POST,
GET /), dashboard (warm, logged in as an admin), users (the users list,
first page of 120 users), healthz (the server and Django's handler alone),
hello (a 2-byte WSGI app under the same server settings: the server's own
floor). /healthz with the same code on both sides shows the method's noise.

    python -m benchmarks ab ee5f1c5                             # that commit vs this tree
    python -m benchmarks ab ee5f1c5 --servers gunicorn granian  # each as it was deployed
    python -m benchmarks ab . --env-b IAM_LOG_FORMAT=json         # one setting's cost

--env, --env-a and --env-b add environment to both sides, to A, to B: the
same tree with a setting on one side only measures that setting.

Both sides are served by granian unless --servers says; gunicorn can serve
only a commit from before the switch to granian (A), with that commit's
gunicorn.conf.py (benchmarks/servers.py).
"""

from __future__ import annotations

import subprocess
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path

from benchmarks import stack
from benchmarks.browser import Browser, full_login
from benchmarks.otlp import OTLPReceiver
from benchmarks.paired import Phase, Side, alternate, compare
from benchmarks.results import ROOT, Result, Table, git
from benchmarks.servers import KINDS, PRODUCTION, Server

PAGES = ("login", "dashboard", "users", "healthz", "hello")


def add_arguments(parser, pages: str = "login,dashboard,healthz") -> None:
    parser.add_argument("base", nargs="?", default=".", help="commit, branch or path for A")
    parser.add_argument(
        "--servers",
        nargs=2,
        default=[PRODUCTION, PRODUCTION],
        choices=KINDS,
        metavar=("A", "B"),
        help=f"server of each side (default: {PRODUCTION} {PRODUCTION}; gunicorn only for "
        "an A from before the switch to granian)",
    )
    parser.add_argument("--pages", default=pages, help=f"comma list of {', '.join(PAGES)}")
    parser.add_argument("--blocks", type=int, default=12)
    parser.add_argument("--logins", type=int, default=10, help="full logins per block")
    parser.add_argument("--views", type=int, default=200, help="page views per block")
    parser.add_argument("--tls", action="store_true", help="the servers terminate TLS")
    add_env_arguments(parser)
    stack.add_arguments(parser)


def add_env_arguments(parser) -> None:
    group = parser.add_argument_group(
        "environment of the servers",
        "KEY=VALUE, each repeatable, on top of the production environment of benchmarks/stack.py. "
        "In a VALUE, {otlp} is the local OTLP receiver's URL (with --otlp-receiver) and "
        "{tmpdir} a new empty directory of that side (e.g. PROMETHEUS_MULTIPROC_DIR={tmpdir}).",
    )
    for flag, who in (("--env", "both sides"), ("--env-a", "side A"), ("--env-b", "side B")):
        group.add_argument(
            flag, action="append", default=[], metavar="KEY=VALUE", help=f"for {who}"
        )
    group.add_argument(
        "--otlp-receiver",
        action="store_true",
        help="start a local OTLP/HTTP receiver that accepts and discards spans "
        "(benchmarks/otlp.py); side B's OTEL_EXPORTER_OTLP_ENDPOINT is its URL unless set",
    )


def side_envs(args, receiver=None) -> dict[str, dict[str, str]]:
    """The extra environment of sides A and B from --env, --env-a, --env-b
    (and the receiver's endpoint for B with --otlp-receiver)."""
    envs = {}
    for side in "AB":
        env = {}
        for item in [*args.env, *getattr(args, f"env_{side.lower()}")]:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise SystemExit(f"--env wants KEY=VALUE, not {item!r}")
            if "{otlp}" in value and receiver is None:
                raise SystemExit(f"{key}: {{otlp}} needs --otlp-receiver")
            value = value.replace("{otlp}", receiver.endpoint if receiver else "")
            if "{tmpdir}" in value:
                value = value.replace("{tmpdir}", tempfile.mkdtemp(prefix=f"iam-bench-{side}-"))
            env[key] = value
        envs[side] = env
    if receiver is not None:
        envs["B"].setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    return envs


@contextmanager
def checkout(base: str):
    """The tree of `base`: this one, a path, or a detached git worktree."""
    if base == ".":
        yield ROOT
        return
    if Path(base).is_dir():
        yield Path(base).resolve()
        return
    path = Path(tempfile.mkdtemp()) / "base"
    subprocess.run(
        ["git", "worktree", "add", "--detach", "-q", str(path), base], cwd=ROOT, check=True
    )
    try:
        yield path
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, check=False)


def page_phases(pages: list[str], servers: dict, hellos: dict, args) -> list[Phase]:
    """The phases for `pages`; `servers` / `hellos`: side label → Server."""
    admins = {}

    def admin(side: Side) -> Browser:
        """One logged-in admin per side, kept for every page it views."""
        if side.label not in admins:
            admins[side.label] = Browser(servers[side.label]).login()
        return admins[side.label]

    def view(path: str, who=admin):
        def make(side: Side):
            browser = who(side)
            return lambda: browser.get(path)

        return make

    def login(side: Side):
        server = servers[side.label]
        return lambda: full_login(server)

    def anonymous(where: dict):
        return lambda side: Browser(where[side.label])

    catalogue = [
        Phase("login", "full login (3 requests)", args.logins, login),
        Phase("dashboard", "warm dashboard view", args.views, view("/")),
        Phase("users", "users list, first page", args.views // 2, view("/users/")),
        Phase("healthz", "/healthz", args.views, view("/healthz", anonymous(servers))),
        Phase(
            "hello",
            "2-byte WSGI app",
            args.views,
            view("/", anonymous(hellos)),
            meter=lambda side: hellos[side.label].cpu,
        ),
    ]
    return [phase for phase in catalogue if phase.name in pages]


@contextmanager
def paired_servers(args, name: str, extra: dict[str, dict[str, str]] | None = None):
    """Both sides prepared and served; yields (sides, servers, hellos, envs).
    `extra`: more environment for side "A" and side "B" (side_envs)."""
    extra = extra or {}
    pages = args.pages.split(",")
    if unknown := set(pages) - set(PAGES):
        raise SystemExit(f"unknown pages: {', '.join(sorted(unknown))}")
    with ExitStack() as stack_:
        trees = {"A": stack_.enter_context(checkout(args.base)), "B": ROOT}
        labels = {
            "A": f"{describe_tree(args.base)} · {args.servers[0]}",
            "B": f"this tree · {args.servers[1]}",
        }
        if labels["A"] == labels["B"]:
            labels = {k: f"{k}: {v}" for k, v in labels.items()}
        servers, hellos, envs = {}, {}, {}
        for index, (side, kind) in enumerate(zip("AB", args.servers, strict=True)):
            label = labels[side]
            envs[label] = stack.server_env(
                stack.backend(args, f"{name}_{side.lower()}", index), **extra.get(side, {})
            )
            stack.prepare(envs[label], filler=120 if "users" in pages else 0, root=trees[side])
            servers[label] = stack_.enter_context(
                Server(kind, envs[label], root=trees[side], tls=args.tls)
            )
            if "hello" in pages:
                hellos[label] = stack_.enter_context(
                    Server(
                        kind,
                        envs[label],
                        app="benchmarks.hello_wsgi",
                        config_root=trees[side],
                        tls=args.tls,
                    )
                )
        sides = [Side(labels[s], servers[labels[s]].cpu) for s in "AB"]
        yield sides, servers, hellos, envs


def describe_tree(base: str) -> str:
    if base == ".":
        return "this tree"
    if Path(base).is_dir():
        return base
    return git("rev-parse", "--short", base) or base


def warm_up(phases: list[Phase], sides: list[Side]) -> None:
    for phase in phases:
        for side in sides:
            action = phase.make(side)
            for _ in range(min(phase.count, 10 if phase.name == "login" else 50)):
                action()


def run(args) -> Result:
    with ExitStack() as running:
        receiver = running.enter_context(OTLPReceiver()) if args.otlp_receiver else None
        extra = side_envs(args, receiver)
        sides, servers, hellos, envs = running.enter_context(paired_servers(args, "ab", extra))
        phases = page_phases(args.pages.split(","), servers, hellos, args)
        warm_up(phases, sides)
        cpu = alternate(sides, phases, args.blocks)
    table, figures = compare(cpu, phases, sides[0].label, sides[1].label)
    setup = Table(
        "",
        ["setting", "value"],
        [
            ["A", sides[0].label],
            ["B", sides[1].label],
            ["transport", "TLS at the server" if args.tls else "plain HTTP (TLS at the proxy)"],
            ["database / cache", stack.describe(next(iter(envs.values())))],
            ["blocks", args.blocks],
            ["workers × threads", "1 × 4 each"],
            *[[f"environment of {side}", env_text(extra[side])] for side in "AB" if extra[side]],
        ],
    )
    if receiver is not None:
        setup.rows.append(["OTLP receiver: requests to /v1/traces", receiver.spans_requests()])
    return Result(
        "ab",
        tables=[setup, table],
        figures={
            "a": sides[0].label,
            "b": sides[1].label,
            "tls": args.tls,
            "env": extra,
            **figures,
        },
    )


def env_text(env: dict[str, str]) -> str:
    return " ".join(f"`{k}={v}`" for k, v in env.items())
