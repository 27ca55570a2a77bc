"""Every benchmark runs, at a smoke size: `python -m benchmarks <name> <small
options>` as a subprocess exits 0 and prints a table. Nothing is timed or
compared (this machine's speed says nothing at these sizes); the point is
that a benchmark which no longer runs against the current code fails the
build instead of rotting until someone needs its figure.

Each runs once per CI run, on the PostgreSQL leg, on PostgreSQL + Redis
(databases iam_bench_smoke_*, Redis dbs 13 and 14), as production runs;
the SQLite leg skips them (CI time: they would add some 1.5 min there and
prove little more). Locally on SQLite, `SMOKE_ON_SQLITE=1` runs those that
can with --sqlite. `faults` stops a
PostgreSQL cluster and a Redis of its own (--private), never the suite's.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.db import connection

from benchmarks.__main__ import BENCHMARKS

ROOT = Path(__file__).resolve().parent.parent
SMALL_AB = ["--blocks", "2", "--views", "10", "--logins", "1"]

# name → (options, needs PostgreSQL)
SMOKE = {
    "argon2": (["--rounds", "3"], None),
    "ab": (
        ["HEAD", *SMALL_AB, "--pages", "login,dashboard,healthz,hello"]
        + ["--env-b", "IAM_LOG_FORMAT=json", "--otlp-receiver"],
        False,
    ),
    "observability": (SMALL_AB, False),
    "p1": (["--blocks", "2", "--logins", "1"], False),
    "p2": (
        ["--base", "HEAD", "--base-server", "granian", "--blocks", "2", "--views", "10"]
        + ["--count", "10", "--stats-delay", "1"],
        True,
    ),
    "keepalive": (["--keepalive", "1", "--proxy-idle", "0.5", "--connections", "1"], False),
    "users-list": (["--sizes", "200", "400", "--rounds", "1"], True),
    "audit-scale": (
        ["--small", "2000", "--large", "20000", "--export", "5000", "--rounds", "2", "--no-check"],
        True,
    ),
    "scim-membership": (["--sizes", "10", "50", "--rounds", "2"], False),
    "sso-callback": (["--logins", "3"], False),
    "saml-acs": (["--logins", "5"], False),
    "reset-timing": (["--pairs", "3"], False),
    "token-grants": (["--seconds", "1", "--clients", "1"], False),
    "load": (["--users", "3", "--seconds", "3", "--workers", "1"], False),
    "memory": (["--logins", "20", "--clients", "1"], False),
    "faults": (["--private", "--down", "0.5", "--settle", "1"], True),
    "profile": (["--seconds", "1"], False),
    "report": ([], None),  # None: no backend (report reads benchmarks/results/)
    "audit-seal": (["--sizes", "2000", "5000"], False),
}


def test_every_benchmark_has_a_smoke_run():
    assert set(SMOKE) == set(BENCHMARKS)


def backend_options() -> list[str]:
    """This leg's backend: --sqlite, or PostgreSQL and Redis at the suite's hosts."""
    if connection.vendor != "postgresql":
        return ["--sqlite"]
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    location = settings.CACHES["default"].get("LOCATION", "")
    location = location[0] if isinstance(location, list | tuple) else location
    redis = urlsplit(location) if str(location).startswith("redis") else None
    redis_host = redis.netloc if redis else "127.0.0.1:6379"
    return [
        "--postgres",
        f"postgres://{user}@{host}:{port}/iam_bench_smoke",
        "--redis",
        f"redis://{redis_host}/13",
    ]


@pytest.mark.parametrize("name", SMOKE)
def test_benchmark_runs_at_smoke_size(name, tmp_path):
    options, needs_postgres = SMOKE[name]
    on_sqlite = connection.vendor != "postgresql"
    if on_sqlite and needs_postgres:
        pytest.skip(f"{name} needs PostgreSQL: it runs on the PostgreSQL leg")
    if on_sqlite and not os.environ.get("SMOKE_ON_SQLITE"):
        pytest.skip("benchmarks run once per CI run, on the PostgreSQL leg")
    out = tmp_path / f"{name}.json"
    argv = [name, *options, "--json", str(out)]
    if needs_postgres is not None:
        argv += backend_options()
    # The suite's own database, cache and settings stay out of the run.
    suite = ("DATABASE_URL", "CACHE_URL", "DJANGO_SETTINGS_MODULE")
    env = {k: v for k, v in os.environ.items() if k not in suite}
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert "| --- |" in result.stdout, result.stdout[-3000:]
    document = json.loads(out.read_text())
    assert document["benchmark"] == name
    assert not document["failed"]
    if name == "scim-membership":
        # What the benchmark is for: a membership PATCH costs the same
        # statements whatever the group's size.
        patches = document["figures"]["patches"]
        assert {p["members"] for p in patches} == {10, 50}
        for op in ("Add", "Remove"):
            assert len({p["sql"] for p in patches if p["op"] == op}) == 1
    if name == "audit-scale":
        # Every filter at both sizes; the export streamed every row it should.
        assert {p["filter"] for p in document["figures"]["pages"]} >= {"first page", "a day"}
        export = document["figures"]["export"]
        assert export["rows"] == export["expected"] > 0 and export["met"]
    if name == "saml-acs":
        # Every row ran, and each hostile one was refused for its reason
        # (the benchmark checks the audit trail) at the maximum size.
        rows = document["figures"]["rows"]
        assert [r["reason"] for r in rows] == [
            "",
            "",
            "saml_signature",
            "saml_malformed",
            "saml_signature",
            "saml_xml_forbidden",
        ]
        assert all(500 * 1024 < r["bytes"] <= 512 * 1024 for r in rows if r["reason"])
    if name == "users-list":
        assert {row["users"] for row in document["figures"]["pages"]} == {200, 400}
