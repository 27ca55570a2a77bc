"""Users list at scale: SQL statements and median render time per variant, 100,000+ users.

PostgreSQL only (seeding uses generate_series). The database is dropped and
made anew, migrated, and seeded with SQL (5 % blocked, every user in
backoffice-users, every tenth also in support) whose column list is read
from the models, so a field added later gets its default and cannot break
the seed (`tests/test_benchmarks_smoke.py` runs it), and without the
request statement timeout; each variant of /users/ is
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

# The columns the seed fills with its own expressions (g: the row's number
# in generate_series; u, grp: the user and the group of a membership). Every other
# column of the table gets its model field's default (or NULL where the
# field allows it), so a field added later is seeded as the app would make
# it, and one the seed cannot fill stops the run naming it.
USER_COLUMNS = {
    "password": "'!'",
    "last_login": "now() - (g %% 9973) * interval '1 minute'",
    "email": "'user' || g || '@bench.example'",
    "first_name": "initcap(translate(substr(md5('f' || (g %% 4999)), 1, 6), "
    "'0123456789', 'aeiouylmnr'))",
    "last_name": "initcap(translate(substr(md5('l' || (g %% 49999)), 1, 8), "
    "'0123456789', 'aeiouylmnr'))",
    "status": "CASE WHEN g %% 20 = 0 THEN 'blocked' ELSE 'active' END",
    "created_at": "now() - g * interval '1 second'",
    "updated_at": "now()",
}
MEMBERSHIP_COLUMNS = {"user_id": "u.id", "group_id": "grp.id", "created_at": "now()"}


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


def insert_sql(model, columns: dict[str, str], source: str) -> tuple[str, dict]:
    """`INSERT INTO <model's table> (...) SELECT ... <source>`: `columns`'
    expressions, and for every other concrete field the default that
    Model.save() would store, as a parameter (NULL where that is None and
    the field may be NULL; else the run stops, naming the field)."""
    from django.db import connection

    names, values, params = [], [], {}
    for field in model._meta.concrete_fields:
        if field.primary_key and field.column not in columns:
            continue
        names.append(connection.ops.quote_name(field.column))
        if field.column in columns:
            values.append(columns[field.column])
        elif (default := field.get_default()) is not None or field.null:
            # What Model.save() would store ("" for a text field without one).
            params[field.column] = field.get_db_prep_save(default, connection)
            values.append(f"%({field.column})s")
        else:
            raise SystemExit(
                f"users-list: {model._meta.db_table}.{field.column} has no default: "
                "say in benchmarks/users_list.py how to seed it"
            )
    table = connection.ops.quote_name(model._meta.db_table)
    return f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(values)} {source}", params


def seed(up_to: int, have: int) -> float:
    """Users up to number `up_to` (from `have` + 1) by generate_series, and
    their memberships. Without the statement timeout of requests
    (DATABASE_STATEMENT_TIMEOUT): a million rows take longer than 30 s."""
    from django.db import connection, transaction

    from accounts.models import Membership, User

    started = time.perf_counter()
    users, user_params = insert_sql(
        User, USER_COLUMNS, "FROM generate_series(%(start)s, %(stop)s) AS g"
    )
    new_members = (
        "FROM accounts_user u JOIN accounts_group grp ON grp.name = %(group)s "
        "WHERE u.email LIKE '%%@bench.example' AND u.id > %(after_id)s"
    )
    members, member_params = insert_sql(Membership, MEMBERSHIP_COLUMNS, new_members)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 0")
        cursor.execute("SELECT coalesce(max(id), 0) FROM accounts_user")
        after_id = cursor.fetchone()[0]
        cursor.execute(users, {**user_params, "start": have + 1, "stop": up_to})
        cursor.execute(
            members, {**member_params, "group": "backoffice-users", "after_id": after_id}
        )
        cursor.execute(
            members + " AND u.id %% 10 = 0",
            {**member_params, "group": "support", "after_id": after_id},
        )
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")
        cursor.execute("ANALYZE")
        cursor.execute("RESET statement_timeout")
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
