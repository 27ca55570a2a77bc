"""Audit trail sealing and verifying: events per second and memory, at 100,000+ events.

The database is made anew and migrated, then seeded with audit events by
SQL (PostgreSQL: generate_series; --sqlite: bulk inserts), backdated past
the settle window. For each size, the new events are sealed as the worker
does (a batch of IAM_AUDIT_SEAL_BATCH per transaction) and then the whole
trail is verified as `audit verify` does; both are timed, and the process's
peak resident memory is read after each verify: it must stay flat as the
trail grows (verify streams).
"""

from __future__ import annotations

import os
import resource
import time

from benchmarks import stack
from benchmarks.results import Result, Table
from benchmarks.users_list import insert_sql

AUDIT_COLUMNS = {
    "created_at": "now() - interval '1 day' + g * interval '1 millisecond'",
    "actor_label": "'user' || (g %% 997) || '@bench.example'",
    "channel": "'web'",
    "action": "CASE WHEN g %% 7 = 0 THEN 'login.failed' ELSE 'login.succeeded' END",
    "target_label": "'user' || (g %% 997) || '@bench.example'",
    "ip": "('192.0.2.' || (g %% 250))::inet",
    "user_agent": "'Mozilla/5.0 (X11; Linux x86_64) bench'",
    "details": "json_build_object('method', 'password', 'n', g)::jsonb",
    "request_id": "md5(g::text)",
}


def add_arguments(parser) -> None:
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    stack.add_arguments(parser)


def setup_django(args) -> None:
    env = stack.server_env(stack.backend(args, "audit_seal"))
    stack.reset_backends(env)
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed(up_to: int, have: int) -> float:
    from django.db import connection, transaction

    from accounts.models import AuditEvent

    started = time.perf_counter()
    if connection.vendor == "postgresql":
        sql, params = insert_sql(
            AuditEvent, AUDIT_COLUMNS, "FROM generate_series(%(start)s, %(stop)s) AS g"
        )
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 0")
            cursor.execute(sql, {**params, "start": have + 1, "stop": up_to})
    else:
        from datetime import timedelta

        from django.utils import timezone

        base = timezone.now() - timedelta(days=1)
        for start in range(have + 1, up_to + 1, 5000):
            AuditEvent.objects.bulk_create(
                AuditEvent(
                    created_at=base + timedelta(milliseconds=g),
                    actor_label=f"user{g % 997}@bench.example",
                    channel="web",
                    action="login.failed" if g % 7 == 0 else "login.succeeded",
                    target_label=f"user{g % 997}@bench.example",
                    ip=f"192.0.2.{g % 250}",
                    user_agent="Mozilla/5.0 (X11; Linux x86_64) bench",
                    details={"method": "password", "n": g},
                    request_id=f"{g:032x}",
                )
                for g in range(start, min(start + 5000, up_to + 1))
            )
        # auto_now_add overrides created_at on insert: backdate afterwards.
        AuditEvent.objects.filter(created_at__gt=base).update(created_at=base)
    return time.perf_counter() - started


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(args) -> Result:
    setup_django(args)
    from django.conf import settings
    from django.db import connection

    from trail.selectors import trail_verify
    from trail.services import audit_seal_pending

    table = Table(
        f"audit trail, {connection.vendor}, batch {settings.IAM_AUDIT_SEAL_BATCH:,}",
        ["events", "sealed now", "seal events/s", "verify s", "verify events/s", "peak MB"],
    )
    figures, have, notes, failed = [], 0, [], False
    for size in sorted(args.sizes):
        notes.append(f"seeded to {size:,} events in {seed(size, have):.0f} s")
        started = time.perf_counter()
        sealed = audit_seal_pending()
        seal_s = time.perf_counter() - started
        started = time.perf_counter()
        report = trail_verify()
        verify_s = time.perf_counter() - started
        failed = failed or not report.ok or report.events != size
        row = {
            "events": size,
            "sealed": sealed,
            "seal_per_s": sealed / seal_s,
            "verify_s": verify_s,
            "verify_per_s": size / verify_s,
            "peak_mb": peak_mb(),
        }
        figures.append(row)
        table.rows.append(
            [
                f"{size:,}",
                f"{sealed:,}",
                f"{row['seal_per_s']:,.0f}",
                f"{verify_s:.1f}",
                f"{row['verify_per_s']:,.0f}",
                f"{row['peak_mb']:.0f}",
            ]
        )
        have = size
    if failed:
        notes.append("FAILED: the trail did not verify, or verified another count")
    return Result(
        "audit-seal", tables=[table], figures={"runs": figures}, notes=notes, failed=failed
    )
