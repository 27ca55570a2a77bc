"""P1: a full password login's server CPU over one Argon2id verification (target ≤ 1.5).

One server (one worker, 4 threads; TLS at the server unless --plain), an
admin with a password. Each block times --logins full logins by new browsers
(GET /login/, POST, GET /: a new connection each, so with TLS one handshake
per login) from the server's CPU, and as many Argon2id verifications in
this process against the very hash the server checks (the same parameters);
the two alternate, the order flipped every block. The figure is the
per-block ratio login / verification: median, middle half, range.
"""

from __future__ import annotations

import statistics
import time

from benchmarks import stack
from benchmarks.argon2 import verifier
from benchmarks.browser import full_login
from benchmarks.paired import Phase, Side, alternate, compare
from benchmarks.results import Result, Table, ratio_text
from benchmarks.servers import PRODUCTION, THIS_TREE, Server

TARGET = 1.5


def add_arguments(parser) -> None:
    parser.add_argument("--server", choices=THIS_TREE, default=PRODUCTION)
    parser.add_argument("--plain", action="store_true", help="plain HTTP instead of TLS")
    parser.add_argument("--blocks", type=int, default=12)
    parser.add_argument("--logins", type=int, default=10, help="logins (and verifications) a block")
    stack.add_arguments(parser)


def run(args) -> Result:
    env = stack.server_env(stack.backend(args, "p1"))
    stack.prepare(env)
    verify = verifier(stack.password_hash(env, stack.ADMIN), stack.PASSWORD)
    with Server(args.server, env, tls=not args.plain) as server:
        sides = [Side("argon2", time.process_time), Side("login", server.cpu)]
        actions = {"argon2": verify, "login": lambda: full_login(server)}
        phase = Phase("p1", "login / verification", args.logins, lambda s: actions[s.label])
        for _ in range(5):
            full_login(server)
            verify()
        cpu = alternate(sides, [phase], args.blocks)
        label = server.label()
    _, figures = compare(cpu, [phase], "argon2", "login")
    ratio = figures["p1"]["b_over_a"]
    met = ratio["median"] <= TARGET
    table = Table(
        f"P1 under {label}, {stack.describe(env)}",
        ["measure", "value"],
        [
            ["server CPU per full login, median block", f"{median_ms(cpu['p1']['login'])}"],
            ["one Argon2id verification, median block", f"{median_ms(cpu['p1']['argon2'])}"],
            ["login / verification, per block", ratio_text(ratio)],
            [f"target ≤ {TARGET}", "met" if met else "not met"],
        ],
    )
    return Result(
        "p1",
        tables=[table],
        figures={"server": label, "ratio": ratio, "target": TARGET, "met": met, **figures},
    )


def median_ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.1f} ms"
