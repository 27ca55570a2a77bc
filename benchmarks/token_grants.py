"""Token grants: refresh-token and client-credentials grants per second per core.

The production server (one worker with 4 threads) on PostgreSQL + Redis
(or --sqlite), an account and two API clients made as the `apiclient`
command makes them; then for each grant --clients keep-alive HTTP clients
stay busy for --seconds. Reported: grants per second (wall), the server's
CPU per grant (its whole process tree, /proc) and grants per CPU-second,
i.e. what one core of the server sustains. Each grant is the whole thing:
client authentication, the token rows, rotation (refresh: the old pair
revoked), and its audit event.

The anchor is Keycloak's sizing guide: 120 refresh or client-credentials
grants per second per vCPU; the aim is twice that.
"""

from __future__ import annotations

import threading
import time

import requests

from benchmarks import stack
from benchmarks.results import Result, Table
from benchmarks.servers import PRODUCTION, THIS_TREE, Server

ANCHOR = 120  # grants per second per vCPU (Keycloak's sizing guide)
ACCOUNT = "grants@bench.example"


def api_client(env: dict[str, str], grant: str) -> tuple[str, str]:
    """(client_id, secret) of a new client, made by the operator's command
    (`manage.py apiclient create`, a stable contract), not by a service
    whose signature may change."""
    out = stack.manage(
        env, "apiclient", "create", "--name", f"bench-{grant}", "--grant", grant, "--scope", "read"
    )
    printed = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return printed["client_id"], printed["client_secret"]


def add_arguments(parser) -> None:
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--server", choices=THIS_TREE, default=PRODUCTION)
    stack.add_arguments(parser)


def _busy(seconds: float, clients: int, work) -> tuple[int, int]:
    """`clients` threads call `work(session, i)` until time is up:
    (grants that succeeded, failures)."""
    stop = time.monotonic() + seconds
    counts = [[0, 0] for _ in range(clients)]

    def loop(i):
        session = requests.Session()
        while time.monotonic() < stop:
            counts[i][0 if work(session, i) else 1] += 1

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def run(args) -> Result:
    env = stack.server_env(stack.backend(args, "token-grants"))
    stack.prepare(env, users=[(ACCOUNT, stack.PASSWORD, [])])
    ids = {grant: api_client(env, grant) for grant in ("password", "client_credentials")}
    with Server(args.server, env) as server:
        token_url = server.base + "/oauth/token/"
        password_client = ids["password"]
        chains = []  # one refresh-token chain per HTTP client
        for _ in range(args.clients):
            answer = requests.post(
                token_url,
                auth=password_client,
                data={"grant_type": "password", "username": ACCOUNT, "password": stack.PASSWORD},
                timeout=30,
            ).json()
            chains.append(answer["refresh_token"])

        def client_credentials(session, i):
            data = {"grant_type": "client_credentials"}
            answer = session.post(token_url, data=data, auth=ids["client_credentials"], timeout=30)
            return answer.status_code == 200

        def refresh(session, i):
            data = {"grant_type": "refresh_token", "refresh_token": chains[i]}
            answer = session.post(token_url, data=data, auth=password_client, timeout=30)
            if answer.status_code != 200:
                return False
            chains[i] = answer.json()["refresh_token"]
            return True

        _busy(2, args.clients, client_credentials)  # warm-up
        rows, figures = [], {}
        for name, work in (("client credentials", client_credentials), ("refresh token", refresh)):
            cpu0, wall0 = server.cpu(), time.monotonic()
            ok, failed = _busy(args.seconds, args.clients, work)
            cpu, wall = server.cpu() - cpu0, time.monotonic() - wall0
            per_core = ok / cpu if cpu else 0.0
            rows.append(
                [
                    name,
                    f"{ok / wall:.0f}",
                    f"{cpu / ok * 1000:.2f} ms" if ok else "—",
                    f"{per_core:.0f}",
                    f"{per_core / ANCHOR:.2f}",
                    failed,
                ]
            )
            figures[name] = {"per_second": ok / wall, "per_core_second": per_core, "failed": failed}
    title = (
        f"{server.kind}, 1 worker × 4 threads, {stack.describe(env)}; "
        f"{args.clients} clients, {args.seconds:.0f} s each"
    )
    table = Table(
        title,
        ["grant", "grants/s", "server CPU / grant", "per core-second", "× anchor (120)", "failed"],
        rows,
    )
    failed = any(f["failed"] for f in figures.values())
    return Result("token-grants", tables=[table], figures=figures, failed=failed)
