"""Forgot password: request time for an address with an account vs one without.

Times POST /password/reset/ in-process (Django's test client, production
settings, DEBUG off, a fresh client each time) in alternating pairs: known
then unknown, unknown then known, … so drift of the machine hits both alike.
Two modes:
- `queued` (production): the request only queues one task; the mail worker
  does the rest later.
- `inline` (the old way, for comparison): the same task runs inside the
  request (django-tasks' immediate backend): look-up, audit, render, send.
Mail goes to memory (Django's locmem backend, as in tests), so "send" is
Django building and copying the message, as with the console backend,
without SMTP. The rate
limits stay on; their counters are cleared between requests, outside the
timed part. A database and cache of the run's own (benchmarks/stack.py:
PostgreSQL + Redis, or --sqlite), never the shell's DATABASE_URL.
"""

from __future__ import annotations

import os
import statistics
import time
import warnings

from benchmarks import stack
from benchmarks.results import Result, Table

KNOWN, UNKNOWN = "ada@bench.example", "nobody@bench.example"
MODES = {
    "queued": "django_tasks_db.DatabaseBackend",
    "inline": "django_tasks.backends.immediate.ImmediateBackend",
}


def one_request(email: str) -> float:
    from django.core.cache import cache
    from django.test import Client

    cache.clear()  # the rate limits' counters: outside the timed part
    client = Client()
    start = time.perf_counter()
    response = client.post("/password/reset/", {"email": email})
    elapsed = time.perf_counter() - start
    assert response.status_code == 302, response.status_code
    return elapsed * 1000


def measure(pairs: int) -> dict[str, list[float]]:
    times = {KNOWN: [], UNKNOWN: []}
    for _ in range(10):  # warm-up: imports, templates, connections
        one_request(KNOWN), one_request(UNKNOWN)
    for i in range(pairs):
        order = (KNOWN, UNKNOWN) if i % 2 == 0 else (UNKNOWN, KNOWN)
        for email in order:
            times[email].append(one_request(email))
    return times


def add_arguments(parser) -> None:
    parser.add_argument("--pairs", type=int, default=300)
    stack.add_arguments(parser)


def _setup(args) -> None:
    """Production settings in this process, on a fresh database and cache of
    the run's own, as the test client needs them."""
    env = stack.server_env(stack.backend(args, "reset_timing"), DJANGO_ALLOWED_HOSTS="testserver")
    stack.reset_backends(env)
    os.environ.update(env)
    warnings.filterwarnings("ignore", message="No directory at")  # no collectstatic here
    import django

    django.setup()


def run(args) -> Result:
    _setup(args)
    from django.core import mail
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import override_settings, setup_test_environment

    from accounts.models import User

    setup_test_environment()  # the test client's hooks, and mail to memory
    call_command("migrate", verbosity=0)
    User.objects.filter(email=KNOWN).delete()
    User.objects.create_user(email=KNOWN, password=None, first_name="Ada", last_name="B")
    title = f"{connection.vendor}, {args.pairs} alternating pairs per mode"
    table = Table(title, ["mode", "address", "median ms", "p90 ms"])
    figures = {}
    for mode, backend in MODES.items():
        tasks = {"default": {"BACKEND": backend, "QUEUES": ["mail"]}}
        with override_settings(TASKS=tasks):
            mail.outbox = []
            times = measure(args.pairs)
            sent = len(mail.outbox)
        for email in (KNOWN, UNKNOWN):
            values = sorted(times[email])
            p90 = values[int(len(values) * 0.9)]
            label = "known" if email == KNOWN else "unknown"
            table.rows.append([mode, label, f"{statistics.median(values):.2f}", f"{p90:.2f}"])
        diffs = [k - u for k, u in zip(times[KNOWN], times[UNKNOWN], strict=True)]
        quartiles = statistics.quantiles(diffs, n=4)
        median = statistics.median(diffs)
        table.rows.append(
            [
                mode,
                "known − unknown, paired",
                f"{median:+.2f} (IQR {quartiles[0]:+.2f} … {quartiles[2]:+.2f})",
                "",
            ]
        )
        table.rows.append([mode, "mails sent inside the requests", sent, ""])
        figures[mode] = {"paired_difference_ms": median, "mails_in_request": sent}
    return Result("reset-timing", tables=[table], figures=figures)
