"""Observability overhead: metrics, JSON logs, traces all on vs all off, paired (target ≤ 1.05).

The paired A/B of `ab` with this tree on both sides: A with all of them off
(text logs, no metrics token, no OTEL_* endpoint), B with all of them on:
IAM_METRICS_TOKEN and a PROMETHEUS_MULTIPROC_DIR of its own, IAM_LOG_FORMAT
json, and OTEL_EXPORTER_OTLP_ENDPOINT pointing at a local OTLP/HTTP receiver
started here that accepts and discards the spans (benchmarks/otlp.py). Both
log at INFO as production does (the other benchmarks log WARNING and up
only, which would hide the logs' cost). Pages: a full password login and a
warm dashboard view, /healthz as the control. Target (issue 22): B costs at
most 5 % more server CPU than A on both.

After the run it checks that B really had them on, and says so: /metrics
answered 200 with the token, the receiver got spans, B's log lines are JSON.
A feature that is not on yet (not built, or built under other names)
measures nothing, and the verdict says "not on" instead of "met".
"""

from __future__ import annotations

import time
from contextlib import ExitStack

import requests

from benchmarks import ab, stack
from benchmarks.otlp import OTLPReceiver
from benchmarks.paired import alternate, compare
from benchmarks.results import Result, Table, ratio_text

TARGET = 1.05
TOKEN = "bench-metrics-token"  # noqa: S105 - a throwaway local token
ON = [
    f"IAM_METRICS_TOKEN={TOKEN}",
    "PROMETHEUS_MULTIPROC_DIR={tmpdir}",
    "IAM_LOG_FORMAT=json",
    "OTEL_EXPORTER_OTLP_ENDPOINT={otlp}",
    "OTEL_SERVICE_NAME=iam-bench",
]
BOTH = ["DJANGO_LOG_LEVEL=INFO"]


def add_arguments(parser) -> None:
    parser.add_argument("--blocks", type=int, default=12)
    parser.add_argument("--logins", type=int, default=10, help="full logins per block")
    parser.add_argument("--views", type=int, default=200, help="page views per block")
    parser.add_argument(
        "--env-b",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="more (or other) environment for side B, after: " + " ".join(ON),
    )
    stack.add_arguments(parser)


def run(args) -> Result:
    args.base, args.servers, args.tls = ".", ["granian", "granian"], False
    args.pages = "login,dashboard,healthz"
    args.env, args.env_a, args.env_b = BOTH, [], ON + args.env_b
    with ExitStack() as running:
        receiver = running.enter_context(OTLPReceiver())
        extra = ab.side_envs(args, receiver)
        sides, servers, hellos, envs = running.enter_context(
            ab.paired_servers(args, "observability", extra)
        )
        phases = ab.page_phases(args.pages.split(","), servers, hellos, args)
        ab.warm_up(phases, sides)
        cpu = alternate(sides, phases, args.blocks)
        b = servers[sides[1].label]
        checks = on_checks(b, extra["B"], receiver)
    table, figures = compare(cpu, phases, sides[0].label, sides[1].label)
    all_on = all(on for on, _ in checks.values())
    verdicts = Table(
        f"Overhead target: B / A ≤ {TARGET} (all on vs all off)",
        ["request", "B / A per pair", "verdict"],
    )
    met = {}
    for name in ("dashboard", "login"):
        ratio = figures[name]["b_over_a"]
        met[name] = ratio["median"] <= TARGET
        verdict = ("met" if met[name] else "not met") if all_on else "not on (see below)"
        verdicts.rows.append([name, ratio_text(ratio), verdict])
    on_table = Table(
        "Was it on, on side B?",
        ["feature", "on", "seen"],
        [[name, "yes" if on else "no", seen] for name, (on, seen) in checks.items()],
    )
    setup = Table(
        "",
        ["setting", "value"],
        [
            ["A", "this tree, granian, all off: " + ab.env_text(extra["A"])],
            ["B", "this tree, granian, all on: " + ab.env_text(extra["B"])],
            ["database / cache", stack.describe(next(iter(envs.values())))],
            ["blocks", args.blocks],
        ],
    )
    return Result(
        "observability",
        tables=[setup, table, verdicts, on_table],
        figures={
            **figures,
            "env": extra,
            "on": {k: v[0] for k, v in checks.items()},
            "target": TARGET,
            "met": met,
        },
    )


def on_checks(server, env: dict[str, str], receiver: OTLPReceiver) -> dict:
    """{feature: (on?, what was seen)} for side B's server."""
    checks = {}
    token = env.get("IAM_METRICS_TOKEN", "")
    answer = requests.get(
        server.base + "/metrics",
        headers={"Authorization": f"Bearer {token}", "X-Forwarded-Proto": "https"},
        timeout=10,
    )
    text = answer.text if answer.status_code == 200 else ""
    samples = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    checks["metrics (/metrics with the token)"] = (
        answer.status_code == 200 and samples > 0,
        f"{answer.status_code}, {samples} samples",
    )
    # The batch span processor exports every few seconds (OTEL_BSP_SCHEDULE_DELAY, 5 s).
    deadline = time.monotonic() + 7
    while receiver.spans_requests() == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    traces = receiver.received["/v1/traces"]
    checks["traces (OTLP receiver)"] = (
        traces["requests"] > 0,
        f"{traces['requests']} exports, {traces['bytes']:,} bytes",
    )
    lines = [line for line in server.log_text().splitlines() if line.strip()]
    json_lines = sum(1 for line in lines if line.lstrip().startswith("{"))
    checks["JSON logs (server log lines)"] = (
        bool(lines) and json_lines > len(lines) / 2,
        f"{json_lines} of {len(lines)} lines JSON",
    )
    return checks
