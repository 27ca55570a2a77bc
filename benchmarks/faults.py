"""Fault runs: PostgreSQL stopped and restarted, Redis stopped and restarted,
the OpenID provider hanging, all while users keep working.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/iam_faults \\
    CACHE_URL=redis://127.0.0.1:6379/10 .venv/bin/python benchmarks/faults.py

It really stops this machine's PostgreSQL cluster and Redis server (and
starts them again, also on error), so run it where nothing else needs them.
The app runs under gunicorn (2 workers, production settings). Meanwhile:
- a probe, an admin, opens the dashboard every 0.1 s; another polls /readyz;
- a writer creates a user (with a group, an audit row and a mail) every 0.25 s
  through the admin screen;
- for the provider phase, a loopback OpenID provider (tests/oidc_fake.py)
  stops answering and six SSO logins are attempted at once.
Printed: what each phase saw while the service was down, the time from the
service's return to the first good answer, and the checks that no record is
half-written (every created user has its group and its audit row).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness import ROOT, Browser, Server, create_users, manage, prepare, production_env

sys.path.insert(0, str(ROOT))
from tests.oidc_fake import CLIENT_ID, CLIENT_SECRET, FakeIdP  # noqa: E402

PASSWORD = "fault run passphrase 1"
ADMIN = "faults-admin@shop.example"
SSO_USER = "faults-sso@shop.example"
PG_VERSION = (
    next(Path("/etc/postgresql").iterdir()).name if Path("/etc/postgresql").exists() else ""
)


def sh(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True)


def postgres(action: str) -> None:
    """Start or stop this machine's cluster; "fast" stop cuts open connections
    and rolls back their transactions, as a crash or failover would."""
    mode = ["-m", "fast"] if action == "stop" else []
    sh("pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, "main", action, *mode)


def postgres_up() -> bool:
    return subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1"], check=False).returncode == 0


def redis_stop() -> None:
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "shutdown", "nosave"], capture_output=True)


def redis_start() -> None:
    # The command this machine's Redis was started with (see .ci/run).
    sh(
        "redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379",
        "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
        "--logfile", "/var/log/redis/ci.log",
    )  # fmt: skip


def redis_up() -> bool:
    result = subprocess.run(["redis-cli", "-h", "127.0.0.1", "ping"], capture_output=True)
    return result.stdout.strip() == b"PONG"


def wait_until(check, timeout: float = 60) -> float:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit("a service did not come back")
        time.sleep(0.05)
    return time.monotonic()


class Probe(threading.Thread):
    """Calls `action` every `every` seconds; keeps (time, status, seconds)."""

    def __init__(self, action, every: float):
        super().__init__(daemon=True)
        self.action, self.every = action, every
        self.samples: list[tuple[float, int, float]] = []
        self.running = True

    def run(self) -> None:
        while self.running:
            t = time.monotonic()
            try:
                status = self.action()
            except Exception:  # noqa: BLE001 - a transport error is a sample too
                status = 0
            self.samples.append((t, status, time.monotonic() - t))
            time.sleep(max(0.0, self.every - (time.monotonic() - t)))

    def between(self, start: float, end: float) -> list[tuple[float, int, float]]:
        return [s for s in self.samples if start <= s[0] < end]

    def recovery(self, back: float, good=(200, 302)) -> float | None:
        """Seconds from `back` to the start of the first good answer after it."""
        for t, status, _ in self.samples:
            if t >= back and status in good:
                return t - back
        return None


def statuses(samples) -> str:
    counts: dict[int, int] = {}
    for _, status, _ in samples:
        counts[status] = counts.get(status, 0) + 1
    return ", ".join(f"{s or 'no answer'}: {n}" for s, n in sorted(counts.items())) or "—"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--down", type=float, default=5.0, help="seconds each service is down")
    args = parser.parse_args()

    idp = FakeIdP()
    env = production_env(
        IAM_MFA_REQUIRED_GROUPS="",
        IAM_SSO_PROVIDERS="fake",
        IAM_SSO_FAKE_KIND="oidc",
        IAM_SSO_FAKE_NAME="Fake IdP",
        IAM_SSO_FAKE_ISSUER=idp.issuer,
        IAM_SSO_FAKE_CLIENT_ID=CLIENT_ID,
        IAM_SSO_FAKE_CLIENT_SECRET=CLIENT_SECRET,
        IAM_SSO_HTTP_TIMEOUT="2",
        EMAIL_URL="dummymail://",
    )
    if not (env["DATABASE_URL"].startswith("postgres") and env.get("CACHE_URL", "")[:5] == "redis"):
        raise SystemExit("faults.py needs DATABASE_URL=postgres://… and CACHE_URL=redis://…")
    prepare(env)
    create_users(env, [(ADMIN, PASSWORD, ["root"]), (SSO_USER, PASSWORD, [])])
    reset = (
        "from accounts.models import User; User.objects.filter(email__startswith='fault-').delete()"
    )
    manage(env, "shell", "-c", reset)

    rows, notes = [], []
    try:
        with Server(env, workers=2) as server:
            admin = Browser(server.base, timeout=10)
            assert admin.login(ADMIN, PASSWORD).status_code == 302
            ready = Browser(server.base, timeout=10)
            writer_browser = Browser(server.base, timeout=10)
            assert writer_browser.login(ADMIN, PASSWORD).status_code == 302
            written: list[tuple[str, int]] = []

            def write() -> int:
                email = f"fault-{len(written)}-{time.monotonic_ns()}@shop.example"
                response = writer_browser.post(
                    "/users/add/",
                    {
                        "email": email,
                        "first_name": "Fault",
                        "last_name": "Run",
                        "status": "active",
                        "password_mode": "invite",
                        "groups": group_id,
                    },
                )
                written.append((email, response.status_code))
                return response.status_code

            group_id = _group_id(env, "backoffice-users")
            probe = Probe(lambda: admin.get("/").status_code, 0.1)
            readyz = Probe(lambda: ready.get("/readyz").status_code, 0.1)
            writer = Probe(write, 0.25)
            for thread in (probe, readyz, writer):
                thread.start()
            time.sleep(3)

            # --- PostgreSQL ---------------------------------------------------
            t_down = time.monotonic()
            postgres("stop")
            time.sleep(args.down)
            # The service is back when it accepts connections, which is before
            # pg_ctlcluster returns.
            starting = subprocess.Popen(
                ["pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, "main", "start"]
            )
            t_back = wait_until(postgres_up)
            starting.wait()
            time.sleep(6)
            rows.append(
                _row("PostgreSQL stopped, restarted", probe, readyz, writer, t_down, t_back)
            )

            # --- Redis --------------------------------------------------------
            redis_stop()
            t_down = time.monotonic()
            time.sleep(args.down)
            redis_start()
            t_back = wait_until(redis_up)
            time.sleep(6)
            rows.append(_row("Redis stopped, restarted", probe, readyz, writer, t_down, t_back))
            lost = [s for s in probe.samples if s[1] == 302]
            notes.append(
                f"probe answers that sent the logged-in admin to the login page (lost "
                f"sessions): {len(lost)}"
            )

            # --- OpenID provider hanging ---------------------------------------
            sso_login(server.base, idp)  # warm: discovery and keys cached again
            idp.delay = 30.0
            t_down = time.monotonic()
            with ThreadPoolExecutor(6) as pool:
                hung = list(pool.map(lambda _: sso_login(server.base, idp), range(6)))
            during = probe.between(t_down, time.monotonic())
            idp.delay = 0.0
            t_back = time.monotonic()
            recovered = None
            while recovered is None and time.monotonic() - t_back < 30:
                if sso_login(server.base, idp)[0] == "logged in":
                    recovered = time.monotonic() - t_back
            outcomes = "; ".join(
                f"{sum(1 for o, _ in hung if o == outcome)} × {outcome} after "
                f"{min(t for o, t in hung if o == outcome):.1f}–"
                f"{max(t for o, t in hung if o == outcome):.1f} s"
                for outcome in sorted({o for o, _ in hung})
            )
            rows.append(
                {
                    "fault": "OpenID provider hanging (6 SSO logins at once)",
                    "while down": f"SSO: {outcomes}; dashboard probe: {statuses(during)}",
                    "slowest probe while down": f"{max(s[2] for s in during) * 1000:.0f} ms",
                    "recovery": f"{recovered:.2f} s" if recovered is not None else "none",
                }
            )
            for thread in (probe, readyz, writer):
                thread.running = False
            time.sleep(0.5)
            log = server.log_text()
    finally:
        if not postgres_up():
            postgres("start")
        if not redis_up():
            redis_start()
        idp.close()

    print("| fault | while down | slowest probe while down | recovery after return |")
    print("| --- | --- | ---: | ---: |")
    for row in rows:
        print(
            f"| {row['fault']} | {row['while down']} | {row['slowest probe while down']} | "
            f"{row['recovery']} |"
        )
    print()
    for note in notes:
        print(note)
    print(
        f"server log: {log.count('Traceback')} tracebacks, "
        f"{log.count('unavailable:')} one-line outage warnings"
    )
    other_5xx = [s for p in (probe, writer) for s in p.samples if s[1] >= 500 and s[1] != 503]
    print(f"answers >= 500 other than 503: {len(other_5xx)}")
    print(check_records(env, written))


def sso_login(base: str, idp: FakeIdP) -> tuple[str, float]:
    """One SSO login as a browser does it; returns (outcome, seconds)."""
    t = time.monotonic()
    browser = Browser(base, timeout=30)
    browser.get("/login/")
    start = browser.post("/sso/fake/login/")
    if start.status_code != 302:
        return f"start answered {start.status_code}", time.monotonic() - t
    callback = idp.authorize(
        start.headers["Location"],
        {"sub": "faults-sso", "email": SSO_USER, "email_verified": True},
    )
    response = browser.get(callback)
    seconds = time.monotonic() - t
    location = response.headers.get("Location", "")
    if response.status_code == 302 and location == "/":
        return "logged in", seconds
    if response.status_code == 302 and "/login/" in location:
        page = browser.get(location).text
        if "Fake IdP did not answer in time" in page:
            return "login page: provider did not answer in time", seconds
        if "Fake IdP is slow to answer right now" in page:
            return "login page: try again (no free slot for provider calls)", seconds
        return "login page without a message naming the provider", seconds
    return f"answered {response.status_code}", seconds


def _row(fault, probe, readyz, writer, t_down, t_back) -> dict:
    during = probe.between(t_down, t_back)
    writes = writer.between(t_down, t_back)
    ready_during = readyz.between(t_down + 0.5, t_back)
    return {
        "fault": fault,
        "while down": (
            f"dashboard: {statuses(during)}; user creation: {statuses(writes)}; "
            f"/readyz: {statuses(ready_during)}"
        ),
        "slowest probe while down": f"{max((s[2] for s in during), default=0) * 1000:.0f} ms",
        "recovery": " / ".join(
            f"{name} {r:.2f} s" if (r := p.recovery(t_back)) is not None else f"{name} never"
            for name, p in (("dashboard", probe), ("writes", writer), ("/readyz", readyz))
        ),
    }


def _group_id(env, name: str) -> str:
    code = f"from accounts.models import Group; print(Group.objects.get(name={name!r}).pk)"
    return manage(env, "shell", "-c", code).split()[-1]


def check_records(env, written: list[tuple[str, int]]) -> str:
    """Every user the writer created is whole: its group membership and its
    `user.created` audit row exist; no user exists whose creation failed."""
    code = (
        "import json, sys\n"
        "from accounts.models import AuditEvent, User\n"
        "emails = json.load(sys.stdin)\n"
        "users = {u.email: u for u in User.objects.filter(email__in=emails)"
        ".prefetch_related('groups')}\n"
        "audited = set(AuditEvent.objects.filter(action='user.created', "
        "target_label__in=emails).values_list('target_label', flat=True))\n"
        "print(json.dumps({'users': sorted(users), 'grouped': sorted(e for e, u in users.items() "
        "if [g.name for g in u.groups.all()] == ['backoffice-users']), "
        "'audited': sorted(audited)}))\n"
    )
    out = manage(env, "shell", "-c", code, stdin=json.dumps([e for e, _ in written]))
    found = json.loads(out.strip().splitlines()[-1])
    users, grouped, audited = (set(found[k]) for k in ("users", "grouped", "audited"))
    ok = {e for e, s in written if s == 302}
    refused = {e for e, s in written if s != 302}
    half = (users - grouped) | (users - audited) | (audited - users)
    created_despite_error = users & refused
    return (
        f"records: {len(written)} user creations tried, {len(ok)} answered as done, "
        f"{len(users)} users exist; all answered-done exist: {ok <= users}; half-written "
        f"(no group or no audit row, or an audit row without user): {len(half)}; created "
        f"although the answer was an error: {len(created_despite_error)}"
        + (f" ({statistics.mode([s for e, s in written if e in created_despite_error])})"
           if created_despite_error else "")
    )  # fmt: skip


if __name__ == "__main__":
    main()
