"""Real app servers for the tests that need processes, not a test client:
granian started as the production image starts it (the Dockerfile's ENV and
its CMD, run by sh; `image()` reads them), on a free loopback port."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from benchmarks.servers import image

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def manage(
    env: dict, *args, stdin: str | None = None, root: Path = ROOT
) -> subprocess.CompletedProcess:
    """`manage.py <args>` of the tree `root` in its own process, failing loudly."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        input=stdin,
        text=True,
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
    )


_MIGRATED: list[Path] = []


def migrated_sqlite(db: Path) -> str:
    """The URL of a migrated SQLite database at `db`: a copy of one that this
    run migrated once. A `migrate` is 5-10 s of CPU and, as SQLite syncs each
    migration to disk, up to a minute on a machine whose disk is busy; a dozen
    fixtures needed one each. (Migrations read no environment, so every copy
    is what `migrate` would have made.)"""
    if not _MIGRATED:
        folder = Path(tempfile.mkdtemp(prefix="iam-migrated-"))
        atexit.register(shutil.rmtree, folder, True)
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CACHE_URL")}
        env.update(DATABASE_URL=f"sqlite:///{folder / 'template.sqlite3'}")
        env.update(DJANGO_SETTINGS_MODULE="iam.settings")
        manage(env, "migrate", "-v0")
        _MIGRATED.append(folder / "template.sqlite3")
    shutil.copyfile(_MIGRATED[0], db)
    wal = Path(f"{_MIGRATED[0]}-wal")  # none after a clean exit; if any, part of the database
    if wal.exists():
        shutil.copyfile(wal, f"{db}-wal")
    return f"sqlite:///{db}"


def create_user(env: dict, email: str, group: str, password: str) -> None:
    manage(
        env,
        "createuser",
        *("--email", email, "--first-name", "A", "--last-name", "B", "--group", group),
        "--password-stdin",
        stdin=password + "\n",
    )


def server_env(env: dict, port: int, root: Path = ROOT, **knobs: str) -> dict:
    """The environment of one production server on loopback `port`: the
    image's ENV, then `env` (the app's settings; any GRANIAN_* in it is
    dropped, so a shell's own cannot leak in), then `knobs` (GRANIAN_*
    overrides, as compose's `environment` would set), one worker unless a
    knob says. This interpreter's bin/ comes first on PATH, so the CMD's
    `granian` is the one installed beside it. `root`: the tree served (its
    Dockerfile's ENV; its modules first on the path)."""
    defaults = image(root)["env"]
    app = {k: v for k, v in env.items() if not k.startswith("GRANIAN_")}
    bin_dir = str(Path(sys.executable).parent)
    return {
        **defaults,
        **app,
        "GRANIAN_WORKERS": "1",
        **knobs,
        "GRANIAN_HOST": "127.0.0.1",
        "GRANIAN_PORT": str(port),
        "PATH": os.pathsep.join([bin_dir, env.get("PATH", os.defpath)]),
        "PYTHONPATH": str(root),
    }


class Started:
    """One running server: `base` URL, `port`, `log` (its stdout and stderr).
    `root`: the tree it serves (another release's, for the upgrade test);
    `port`: a given one (a replacement on its predecessor's address)."""

    def __init__(
        self, env: dict, log: Path, *, root: Path = ROOT, port: int | None = None, **knobs: str
    ):
        self.root = root
        self.given_port = port
        self.app_env, self.knobs = env, knobs
        self.log = log
        self._start(port or free_port())

    def _start(self, port: int) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = server_env(self.app_env, self.port, self.root, **self.knobs)
        if "PROMETHEUS_MULTIPROC_DIR" not in {**self.app_env, **self.knobs}:
            # Each server its own metrics folder (the image's is one per container).
            self.env["PROMETHEUS_MULTIPROC_DIR"] = str(self.log.with_suffix(".metrics"))
        self.log_start = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                image(self.root)["cmd"],
                cwd=self.root,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def _lost_its_port(self) -> bool:
        """The free port was taken between `free_port()` and granian's bind
        (another process on this machine, e.g. CI's other leg, bound it)."""
        with self.log.open("rb") as log:
            log.seek(self.log_start)
            return b"Address already in use" in log.read()

    def wait_ready(self, seconds: float = 60) -> None:
        """Until /readyz answers 200 (a slow machine may time out a first probe)."""
        deadline = time.monotonic() + seconds
        retries = 3
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if self.given_port is None and retries and self._lost_its_port():
                    retries -= 1
                    self._start(free_port())
                    continue
                raise RuntimeError(f"granian exited at start:\n{self.log.read_text()[-3000:]}")
            try:
                if requests.get(self.base + "/readyz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"granian not ready in {seconds:g} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextmanager
def started(env: dict, count: int = 1, **knobs: str):
    """`count` production servers on the same settings; yields them (Started)
    once each answers /readyz."""
    folder = Path(tempfile.mkdtemp(prefix="granian-"))
    servers: list[Started] = []
    try:
        for n in range(count):
            servers.append(Started(env, folder / f"server-{n}.log", **knobs))
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def granian(env: dict, count: int = 1, **knobs: str):
    """As `started`, yielding the servers' base URLs."""
    with started(env, count, **knobs) as servers:
        yield [server.base for server in servers]
