"""Faults: PostgreSQL, Redis stopped and restarted, the OpenID provider hanging, users working.

It really stops this machine's PostgreSQL cluster (pg_ctlcluster, fast stop:
open connections are cut) and Redis (shutdown nosave) for --down seconds
each and starts them again (also on error): run it only where nothing else
needs them, or with --private, which starts a cluster and a Redis of the
run's own and stops those (benchmarks/backends.py). The app runs with 2
workers. Meanwhile an admin opens the dashboard every 0.1 s, another client
polls /readyz, and a writer creates a user (a group, an audit row, an
invitation) every 0.25 s through the admin screen; then the loopback
provider (benchmarks/fake_idp.py) stops answering while six SSO logins are
attempted at once. Reported: what each phase saw while down, the time from
the service's return to the first good answer, and that no record is
half-written.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from benchmarks import stack
from benchmarks.backends import MachineBackends, PrivateBackends
from benchmarks.browser import Browser
from benchmarks.fake_idp import FakeIdP
from benchmarks.results import Result, Table
from benchmarks.servers import PRODUCTION, THIS_TREE, Server

PASSWORD = stack.PASSWORD
ADMIN = stack.ADMIN
SSO_USER = "faults-sso@bench.example"


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


def add_arguments(parser) -> None:
    parser.add_argument("--down", type=float, default=5.0, help="seconds each service is down")
    parser.add_argument(
        "--settle", type=float, default=6.0, help="seconds watched after each service is back"
    )
    parser.add_argument(
        "--private",
        action="store_true",
        help="stop a PostgreSQL cluster and a Redis of the run's own (free ports, a temporary "
        "directory) instead of this machine's; --postgres and --redis are then ignored",
    )
    parser.add_argument("--server", choices=THIS_TREE, default=PRODUCTION)
    stack.add_arguments(parser)


def run(args) -> Result:
    if args.sqlite:
        raise SystemExit("faults stops PostgreSQL and Redis: drop --sqlite")
    backends = PrivateBackends() if args.private else MachineBackends(args.postgres, args.redis)
    with backends:
        args.postgres, args.redis = backends.postgres_url, backends.redis_url
        return faults(args, backends)


def faults(args, backends) -> Result:
    idp = FakeIdP()
    env = stack.server_env(stack.backend(args, "faults"), IAM_SSO_HTTP_TIMEOUT="2", **idp.env())
    # The SSO user has no password: an account with one must first prove
    # its address before an SSO link (sso.services), which is not this run's point.
    stack.prepare(env, users=[(ADMIN, PASSWORD, ["root"]), (SSO_USER, None, [])])
    rows, notes = [], []
    try:
        with Server(args.server, env, workers=2) as server:
            probes = Probes(server, _group_id(env, "backoffice-users"))
            time.sleep(3)
            rows.append(postgres_phase(probes, backends, args.down, args.settle))
            rows.append(redis_phase(probes, backends, args.down, args.settle))
            lost = [s for s in probes.dashboard.samples if s[1] == 302]
            notes.append(
                f"probe answers sending the logged-in admin to the login page: {len(lost)}"
            )
            rows.append(provider_phase(server, idp, probes))
            probes.stop()
            log = server.log_text()
    finally:
        if not backends.postgres_up():
            backends.postgres_start().wait()
        if not backends.redis_up():
            backends.redis_start()
        idp.close()
    other_5xx = [
        s
        for p in (probes.dashboard, probes.writer)
        for s in p.samples
        if s[1] >= 500 and s[1] != 503
    ]
    notes += [
        f"server log: {log.count('Traceback')} tracebacks, "
        f"{log.count('unavailable:')} one-line outage warnings",
        f"answers >= 500 other than 503: {len(other_5xx)}",
        check_records(env, probes.written),
    ]
    table = Table(
        f"faults under {args.server}, 2 workers",
        ["fault", "while down", "slowest probe while down", "recovery after return"],
        [list(row.values()) for row in rows],
    )
    return Result("faults", tables=[table], figures={"rows": rows}, notes=notes)


class Probes:
    """An admin opening the dashboard every 0.1 s, a client polling /readyz,
    a writer creating a user (group, audit row, invitation) every 0.25 s."""

    def __init__(self, server, group_id: str):
        admin = Browser(server, timeout=10).login(ADMIN, PASSWORD)
        ready = Browser(server, timeout=10)
        self.writer_browser = Browser(server, timeout=10).login(ADMIN, PASSWORD)
        self.group_id = group_id
        self.written: list[tuple[str, int]] = []
        self.dashboard = Probe(lambda: admin.get("/", expect=None).status_code, 0.1)
        self.readyz = Probe(lambda: ready.get("/readyz", expect=None).status_code, 0.1)
        self.writer = Probe(self.write, 0.25)
        for thread in self.all():
            thread.start()

    def all(self):
        return (self.dashboard, self.readyz, self.writer)

    def write(self) -> int:
        email = f"fault-{len(self.written)}-{time.monotonic_ns()}@bench.example"
        response = self.writer_browser.post(
            "/users/add/",
            {
                "email": email,
                "first_name": "Fault",
                "last_name": "Run",
                "status": "active",
                "password_mode": "invite",
                "groups": self.group_id,
            },
        )
        self.written.append((email, response.status_code))
        return response.status_code

    def stop(self) -> None:
        for thread in self.all():
            thread.running = False
        time.sleep(0.5)


def postgres_phase(probes: Probes, backends, down: float, settle: float) -> dict:
    t_down = time.monotonic()
    backends.postgres_stop()
    time.sleep(down)
    # The service is back when it accepts connections, before its start command returns.
    starting = backends.postgres_start()
    t_back = wait_until(backends.postgres_up)
    starting.wait()
    time.sleep(settle)
    return _row("PostgreSQL stopped, restarted", probes, t_down, t_back)


def redis_phase(probes: Probes, backends, down: float, settle: float) -> dict:
    backends.redis_stop()
    t_down = time.monotonic()
    time.sleep(down)
    backends.redis_start()
    t_back = wait_until(backends.redis_up)
    time.sleep(settle)
    return _row("Redis stopped, restarted", probes, t_down, t_back)


def provider_phase(server, idp: FakeIdP, probes: Probes) -> dict:
    sso_login(server, idp)  # warm: discovery and keys cached again
    idp.delay = 30.0
    t_down = time.monotonic()
    with ThreadPoolExecutor(6) as pool:
        hung = list(pool.map(lambda _: sso_login(server, idp), range(6)))
    during = probes.dashboard.between(t_down, time.monotonic())
    idp.delay = 0.0
    t_back = time.monotonic()
    recovered = None
    while recovered is None and time.monotonic() - t_back < 30:
        if sso_login(server, idp)[0] == "logged in":
            recovered = time.monotonic() - t_back
    outcomes = "; ".join(
        f"{sum(1 for o, _ in hung if o == outcome)} × {outcome} after "
        f"{min(t for o, t in hung if o == outcome):.1f}–"
        f"{max(t for o, t in hung if o == outcome):.1f} s"
        for outcome in sorted({o for o, _ in hung})
    )
    return {
        "fault": "OpenID provider hanging (6 SSO logins at once)",
        "while down": f"SSO: {outcomes}; dashboard probe: {statuses(during)}",
        "slowest probe while down": f"{max(s[2] for s in during) * 1000:.0f} ms",
        "recovery": f"{recovered:.2f} s" if recovered is not None else "none",
    }


def sso_login(server, idp: FakeIdP) -> tuple[str, float]:
    """One SSO login as a browser does it; returns (outcome, seconds)."""
    t = time.monotonic()
    browser = Browser(server, timeout=30)
    browser.get("/login/")
    start = browser.post("/sso/fake/login/")
    if start.status_code != 302:
        return f"start answered {start.status_code}", time.monotonic() - t
    callback = idp.authorize(
        start.headers["Location"],
        {"sub": "faults-sso", "email": SSO_USER, "email_verified": True},
    )
    response = browser.get(callback, expect=None)
    seconds = time.monotonic() - t
    location = response.headers.get("Location", "")
    if response.status_code == 302 and location == "/":
        return "logged in", seconds
    if response.status_code == 302 and "/login/" in location:
        page = browser.get(location, expect=None).text
        # sso.metadata's messages: "Log in with <NAME> failed: the provider …".
        if "Fake IdP" in page and "did not answer in time" in page:
            return "login page: provider did not answer in time", seconds
        if "Fake IdP" in page and "slow to answer right now" in page:
            return "login page: try again (no free slot for provider calls)", seconds
        return "login page without a message naming the provider", seconds
    return f"answered {response.status_code}", seconds


def _row(fault, probes: Probes, t_down, t_back) -> dict:
    probe, readyz, writer = probes.all()
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
    return stack.manage(env, "shell", "-c", code).split()[-1]


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
    out = stack.manage(env, "shell", "-c", code, stdin=json.dumps([e for e, _ in written]))
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
