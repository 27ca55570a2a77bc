"""The first login on a fresh app server against the next ones (issue 22,
item 7: fresh workers took 2.4-2.7 s for their first logins while /readyz
already answered 200).

    python -m benchmarks.first_login [--rounds 3] [--database-url URL]

Each round starts one granian server (one worker, the image's settings) on
a database of its own (SQLite unless --database-url), waits for /readyz,
then logs in N people one after the other (GET /login/, POST it) and
reports the first login's time and the median of the rest.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import requests

from benchmarks.browser import Browser
from benchmarks.servers import Server
from benchmarks.stack import manage, server_env

PASSWORD = "first login passphrase 9"
PEOPLE = 6


def _login(server, email: str) -> float:
    """A full login (login page, POST, dashboard) by a new browser."""
    start = time.perf_counter()
    Browser(server).login(email, PASSWORD).close()
    return time.perf_counter() - start


def _ready(base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(base + "/readyz", timeout=5).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise SystemExit("not ready in 60 s")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="first-login-"))
    url = args.database_url or f"sqlite:///{folder}/iam.sqlite3"
    env = server_env({"DATABASE_URL": url})
    manage(env, "migrate", "-v0")
    for n in range(PEOPLE * args.rounds):
        email = f"first{n}@bench.example"
        manage(
            env,
            *("createuser", "--email", email, "--first-name", "F", "--last-name", "L"),
            *("--group", "backoffice-users", "--password-stdin"),
            stdin=PASSWORD + "\n",
        )
    firsts, rests = [], []
    for r in range(args.rounds):
        with Server("granian", env) as server:
            _ready(server.base)
            people = [f"first{r * PEOPLE + i}@bench.example" for i in range(PEOPLE)]
            times = [_login(server, email) for email in people]
        firsts.append(times[0])
        rests.append(statistics.median(times[1:]))
        print(f"round {r + 1}: first login {ms(times[0])}, then median {ms(rests[-1])}")
    print(
        f"first login: median {ms(statistics.median(firsts))} over {args.rounds} fresh "
        f"servers; the next logins: median {ms(statistics.median(rests))}"
    )


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


if __name__ == "__main__":
    main()
