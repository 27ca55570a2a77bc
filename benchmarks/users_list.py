"""Users list at scale: queries per page and median render time.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/iam_bench \
        .venv/bin/python benchmarks/users_list.py --sizes 100000 1000000

Creates (drops first) the database named in DATABASE_URL, migrates it, seeds
users with SQL, then renders each users-list variant in-process through
Django's test client as a logged-in root user and prints one table row per
(size, page). PostgreSQL only: seeding uses generate_series.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "iam.settings")
os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver"
os.environ["DJANGO_SECURE_SSL_REDIRECT"] = "false"
os.environ["DJANGO_STATICFILES_STORAGE"] = "django.contrib.staticfiles.storage.StaticFilesStorage"


def recreate_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


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


def seed(up_to: int, have: int) -> float:
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM accounts_user")
        after_id = cursor.fetchone()[0]
        cursor.execute(SEED_SQL, {"start": have + 1, "stop": up_to, "after_id": after_id})
        cursor.execute("ANALYZE")
    return time.perf_counter() - started


def measure(client, path: str, rounds: int) -> tuple[int, float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(path)  # warm
    times = []
    for _ in range(rounds):
        with CaptureQueriesContext(connection) as queries:
            t0 = time.perf_counter()
            response = client.get(path)
            times.append(time.perf_counter() - t0)
        assert response.status_code == 200, (path, response.status_code)
    return len(queries.captured_queries), statistics.median(times) * 1000, response.status_code


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("DATABASE_URL must point at a PostgreSQL database this script may recreate.")
    recreate_database(url)

    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    from accounts.models import Group, User
    from accounts.selectors import groups_by_names
    from accounts.services import user_create

    call_command("migrate", verbosity=0)
    Group.objects.create(name="support")
    admin = user_create(
        email="root@bench.example",
        first_name="Root",
        last_name="Bench",
        password=None,
        groups=groups_by_names(["root"]),
        via="benchmark",
    )
    client = Client()
    client.force_login(admin)
    support = Group.objects.get(name="support").pk
    name_fragment = ""

    pages = [
        ("first page", "/users/"),
        ("search email", "/users/?q=user4242"),
        ("search name", f"/users/?q={name_fragment}"),
        ("status=blocked", "/users/?status=blocked"),
        ("group=support", f"/users/?group={support}"),
        ("sort -created", "/users/?sort=-created"),
        ("sort name", "/users/?sort=name"),
        ("page 150", "/users/?page=150"),
    ]
    print("| users | page | queries | median ms |")
    print("| ---: | --- | ---: | ---: |")
    have = 0
    for size in sorted(args.sizes):
        took = seed(size, have)
        have = size
        if not name_fragment:  # four letters of some last name: a typical search
            name_fragment = User.objects.exclude(pk=admin.pk).order_by("pk")[7].last_name[1:5]
            pages[2] = ("search name", f"/users/?q={name_fragment}")
        print(f"<!-- seeded to {User.objects.count():,} users in {took:.1f} s -->", file=sys.stderr)
        for label, path in pages:
            queries, median_ms, _ = measure(client, path, args.rounds)
            print(f"| {size:,} | {label} `{path}` | {queries} | {median_ms:.1f} |", flush=True)


if __name__ == "__main__":
    main()
