"""Real app servers for the tests that need processes, not a test client:
gunicorn with the production gunicorn.conf.py, on a free loopback port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def manage(env: dict, *args, stdin: str | None = None) -> subprocess.CompletedProcess:
    """`manage.py <args>` in its own process, failing loudly."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        input=stdin,
        text=True,
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


def create_user(env: dict, email: str, group: str, password: str) -> None:
    manage(
        env,
        "createuser",
        *("--email", email, "--first-name", "A", "--last-name", "B", "--group", group),
        "--password-stdin",
        stdin=password + "\n",
    )


@contextmanager
def gunicorn(env: dict, count: int = 1):
    """`count` servers on the same settings; yields their base URLs once each
    answers /readyz (a slow machine may time out a first probe: retried)."""
    processes, bases = [], []
    try:
        for _ in range(count):
            port = free_port()
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "iam.wsgi"],
                    cwd=ROOT,
                    env={**env, "GUNICORN_BIND": f"127.0.0.1:{port}"},
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            bases.append(f"http://127.0.0.1:{port}")
        for base in bases:
            for _ in range(300):
                try:
                    if requests.get(base + "/readyz", timeout=2).status_code == 200:
                        break
                except requests.RequestException:
                    pass
                time.sleep(0.1)
        yield bases
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=15)
