"""Users list at scale: SQL statements and median render time per variant, 100,000+ users.

PostgreSQL only (seeding uses generate_series). The database is dropped and
made anew, migrated, and seeded with SQL (5 % blocked, every user in
backoffice-users, every tenth also in support); each variant of /users/ is
then rendered in-process through Django's test client as a logged-in admin
of group root, and every SQL statement of the request is counted. The count
must not grow with the table.
"""

from __future__ import annotations

import os
import statistics
import time

from benchmarks import stack
from benchmarks.results import Result, Table

SEED_SQL = """
INSERT INTO accounts_user
    (password, last_login, email, first_name, last_name, status, created_at, updated_at)
SELECT '!', now() - (g %% 9973) * interval '1 minute',
       'user' || g || '@bench.example',
       initcap(translate(substr(md5('f' || (g %% 4999)), 1, 6), '0123456789', 'aeiouylmnr')),
       initcap(translate(substr(md5('l' || (g %% 49999)), 1, 8), '0123456789', 'aeiouylmnr')),
       CASE WHEN g %% 20 = 0 THEN 'blocked' ELSE 'active' END,
       now() - g * interval '1 second', now()
FROM generate_series(%(start)s, %(stop)s) AS g;
INSERT INTO accounts_membership (user_id, group_id, source, created_at)
SELECT u.id, g.id, 'manual', now()
FROM accounts_user u JOIN accounts_group g ON g.name = 'backoffice-users'
WHERE u.email LIKE '%%@bench.example' AND u.id > %(after_id)s;
INSERT INTO accounts_membership (user_id, group_id, source, created_at)
SELECT u.id, g.id, 'manual', now()
FROM accounts_user u JOIN accounts_group g ON g.name = 'support'
WHERE u.email LIKE '%%@bench.example' AND u.id > %(after_id)s AND u.id %% 10 = 0;
"""


def add_arguments(parser) -> None:
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--rounds", type=int, default=20)
    stack.add_arguments(parser)


def setup_django(args):
    """Django in this process on a fresh database with an admin and the
    support group; returns a test client logged in as that admin."""
    if args.sqlite:
        raise SystemExit("users-list seeds with PostgreSQL's generate_series: drop --sqlite")
    env = stack.server_env(stack.backend(args, "users_list"))
    stack.reset_backends(env)
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    from accounts.audit import Actor
    from accounts.models import Group
    from accounts.selectors import groups_by_names
    from accounts.services import user_create

    call_command("migrate", verbosity=0)
    Group.objects.create(name="support")
    admin = user_create(
        email=stack.ADMIN,
        first_name="Root",
        last_name="Bench",
        groups=groups_by_names(["root"]),
        by=Actor.system(label="benchmark"),
        via="benchmark",
    )
    client = Client()
    client.force_login(admin)
    return client


def seed(up_to: int, have: int) -> float:
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM accounts_user")
        after_id = cursor.fetchone()[0]
        cursor.execute(SEED_SQL, {"start": have + 1, "stop": up_to, "after_id": after_id})
        cursor.execute("ANALYZE")
    return time.perf_counter() - started


def measure(client, path: str, rounds: int) -> tuple[int, float]:
    """(SQL statements, median milliseconds) of one page."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(path, secure=True)  # warm
    times = []
    for _ in range(rounds):
        with CaptureQueriesContext(connection) as queries:
            t0 = time.perf_counter()
            response = client.get(path, secure=True)
            times.append(time.perf_counter() - t0)
        if response.status_code != 200:
            raise SystemExit(f"{path}: {response.status_code}")
    return len(queries.captured_queries), statistics.median(times) * 1000


def pages() -> list[tuple[str, str]]:
    from accounts.models import Group, User

    support = Group.objects.get(name="support").pk
    # Four letters of some last name: a typical search.
    fragment = User.objects.exclude(email=stack.ADMIN).order_by("pk")[7].last_name[1:5]
    return [
        ("first page", "/users/"),
        ("search email", "/users/?q=user4242"),
        ("search name", f"/users/?q={fragment}"),
        ("status=blocked", "/users/?status=blocked"),
        ("group=support", f"/users/?group={support}"),
        ("sort -created", "/users/?sort=-created"),
        ("sort name", "/users/?sort=name"),
        ("page 150", "/users/?page=150"),
    ]


def run(args) -> Result:
    client = setup_django(args)
    table = Table("users list, in-process", ["users", "page", "SQL statements", "median ms"])
    figures, have, notes = [], 0, []
    for size in sorted(args.sizes):
        took = seed(size, have)
        have = size
        notes.append(f"seeded to {size:,} users in {took:.0f} s")
        for label, path in pages():
            queries, median_ms = measure(client, path, args.rounds)
            table.rows.append([f"{size:,}", f"{label} `{path}`", queries, f"{median_ms:.1f}"])
            figures.append({"users": size, "page": path, "sql": queries, "median_ms": median_ms})
    return Result("users-list", tables=[table], figures={"pages": figures}, notes=notes)
