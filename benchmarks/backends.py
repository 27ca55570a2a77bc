"""The PostgreSQL and Redis that `faults` stops and starts again: this
machine's own (its PostgreSQL cluster by pg_ctlcluster, its Redis as
.ci/run starts it), or with --private a cluster and a Redis of the run's own,
on free loopback ports in a temporary directory, removed afterwards.

A private pair lets the fault run (and the CI's smoke run of it) go while
other work on the machine keeps using the shared servers: stopping those
would cut every other test's connections.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.procs import free_port


def _run(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=check, capture_output=True)


def _pg_bin(name: str) -> str:
    """A PostgreSQL server program: on PATH, else the newest Debian install."""
    found = shutil.which(name)
    if found:
        return found
    installs = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not installs:
        raise SystemExit(f"--private needs PostgreSQL's {name} (package postgresql)")
    return str(installs[-1])


class MachineBackends:
    """This machine's PostgreSQL cluster and Redis on their usual ports."""

    def __init__(self, postgres_url: str, redis_url: str):
        self.postgres_url, self.redis_url = postgres_url, redis_url
        self.version = (
            next(Path("/etc/postgresql").iterdir()).name if Path("/etc/postgresql").exists() else ""
        )

    def __enter__(self) -> MachineBackends:
        return self

    def __exit__(self, *exc) -> None:
        if not self.postgres_up():
            self.postgres_start().wait()
        if not self.redis_up():
            self.redis_start()

    def postgres_stop(self) -> None:
        """ "fast" stop cuts open connections and rolls back their
        transactions, as a crash or failover would."""
        _run(
            "pg_ctlcluster", "--skip-systemctl-redirect", self.version, "main", "stop", "-m", "fast"
        )

    def postgres_start(self) -> subprocess.Popen:
        return subprocess.Popen(
            ["pg_ctlcluster", "--skip-systemctl-redirect", self.version, "main", "start"]
        )

    def postgres_up(self) -> bool:
        return _run("pg_isready", "-q", "-h", "127.0.0.1", check=False).returncode == 0

    def redis_stop(self) -> None:
        _run("redis-cli", "-h", "127.0.0.1", "shutdown", "nosave", check=False)

    def redis_start(self) -> None:
        # The command this machine's Redis was started with (see .ci/run).
        _run(
            "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379",
            "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
            "--logfile", "/var/log/redis/ci.log",
        )  # fmt: skip

    def redis_up(self) -> bool:
        result = _run("redis-cli", "-h", "127.0.0.1", "ping", check=False)
        return result.stdout.strip() == b"PONG"


class PrivateBackends:
    """A PostgreSQL cluster (initdb, trust auth, user postgres) and a Redis of
    this run only, on free loopback ports; gone after the run. Run as root,
    PostgreSQL runs as the `postgres` user (it refuses root)."""

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="iam-bench-backends-"))
        self.pg_port, self.redis_port = free_port(), free_port()
        self.pg_data = self.folder / "pg"
        self.postgres_url = f"postgres://postgres@127.0.0.1:{self.pg_port}/iam_bench"
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def __enter__(self) -> PrivateBackends:
        if self.as_postgres:
            shutil.chown(self.folder, "postgres")
        _run(
            *self.as_postgres, _pg_bin("initdb"), "-D", str(self.pg_data),
            "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        self.postgres_start().wait()
        self.redis_start()
        deadline = time.monotonic() + 30
        while not (self.postgres_up() and self.redis_up()):
            if time.monotonic() > deadline:
                self.__exit__()
                raise SystemExit(f"the private PostgreSQL or Redis did not start ({self.folder})")
            time.sleep(0.1)
        return self

    def __exit__(self, *exc) -> None:
        _run(*self.pg_ctl(), "stop", "-m", "immediate", check=False)
        self.redis_stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def pg_ctl(self) -> list[str]:
        return [*self.as_postgres, _pg_bin("pg_ctl"), "-D", str(self.pg_data)]

    def postgres_stop(self) -> None:
        _run(*self.pg_ctl(), "stop", "-m", "fast")

    def postgres_start(self) -> subprocess.Popen:
        options = (
            f"-p {self.pg_port} -c listen_addresses=127.0.0.1 -k {self.folder} "
            "-c fsync=off -c max_connections=50"
        )
        return subprocess.Popen(
            [*self.pg_ctl(), "start", "-w", "-l", str(self.folder / "pg.log"), "-o", options],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def postgres_up(self) -> bool:
        command = ("pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.pg_port))
        return _run(*command, check=False).returncode == 0

    def redis_stop(self) -> None:
        command = ("redis-cli", "-p", str(self.redis_port), "shutdown", "nosave")
        _run(*command, check=False)

    def redis_start(self) -> None:
        _run(
            "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port",
            str(self.redis_port), "--save", "", "--appendonly", "no", "--dir", str(self.folder),
            "--logfile", str(self.folder / "redis.log"),
        )  # fmt: skip

    def redis_up(self) -> bool:
        result = _run("redis-cli", "-p", str(self.redis_port), "ping", check=False)
        return result.stdout.strip() == b"PONG"
