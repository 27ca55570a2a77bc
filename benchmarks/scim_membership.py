"""SCIM membership PATCH: statements and median time, one member in and out of 10,000.

Entra ID sends one PATCH /Groups/<id> per membership change (its tutorial's
`{"op": "Add"|"Remove", "path": "members", "value": [{"$ref": null,
"value": "<id>"}]}`), and real groups hold tens of thousands: the cost of
one must not grow with the group (a soak once saw the median rise from 45 to
106 ms as a group grew from 137 to 417 members). In-process, through
Django's test client and the whole middleware stack, as the SCIM client
would call it: a fresh database, an operator's SCIM client whose map gives
the group a local group, each group seeded in bulk, then `--rounds` pairs of
add and remove of a provisioned user who is not a member, the sizes
alternating within each round. Every size must show the same SQL
statements (the run fails otherwise).
"""

from __future__ import annotations

import json
import os
import statistics
import time

from benchmarks import stack
from benchmarks.results import Result, Table


def add_arguments(parser) -> None:
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[100, 10_000],
        help="members of each group (default %(default)s)",
    )
    parser.add_argument("--rounds", type=int, default=30, help="add/remove pairs per size")
    stack.add_arguments(parser)


def setup_django(args):
    """Django in this process on a fresh database; returns a SCIM client
    (django.test.Client and the bearer header) and its provisioning client."""
    env = stack.server_env(stack.backend(args, "scim_membership"))
    stack.reset_backends(env)
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    from accounts.audit import Actor
    from accounts.models import Group
    from accounts.selectors import groups_by_names
    from accounts.services import user_create
    from scim.services import client_create

    call_command("migrate", verbosity=0)
    Group.objects.create(name="staff")
    by = Actor.system(label="benchmark")
    user_create(
        email=stack.ADMIN,
        first_name="Root",
        last_name="Bench",
        groups=groups_by_names(["root"]),
        by=by,
        via="benchmark",
    )
    sizes = sorted(args.sizes)
    group_map = {f"group-{size}": "staff" for size in sizes}
    client, token = client_create(name="entra", group_map=group_map, by=by)
    return token, client


class Scim:
    def __init__(self, token: str):
        from django.test import Client

        self.http = Client()
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}

    def send(self, method: str, path: str, body: dict):
        call = getattr(self.http, method)
        return call(
            f"/scim/v2/{path}",
            data=json.dumps(body),
            content_type="application/scim+json",
            secure=True,
            **self.headers,
        )


def seed_group(client, size: int) -> str:
    """A SCIM group of `size` provisioned members, in bulk."""
    from accounts.models import Group as LocalGroup
    from accounts.models import Membership, User
    from scim.models import Account, Group

    users = User.objects.bulk_create(
        (
            User(email=f"m{size}-{n}@bench.example", first_name="M", last_name=str(n), password="!")
            for n in range(size)
        ),
        batch_size=2000,
    )
    accounts = Account.objects.bulk_create(
        (Account(client=client, user=u) for u in users), batch_size=2000
    )
    group = Group.objects.create(client=client, display_name=f"group-{size}")
    group.members.through.objects.bulk_create(
        (group.members.through(group_id=group.pk, account_id=a.pk) for a in accounts),
        batch_size=2000,
    )
    staff = LocalGroup.objects.get(name="staff")
    Membership.objects.bulk_create(
        (Membership(user=u, group=staff, source=client.source) for u in users),
        batch_size=2000,
        ignore_conflicts=True,
    )
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # plans for the tables as they now are
    return str(group.pk)


def patch_once(scim: Scim, gid: str, pk: str, op: str) -> tuple[int, float]:
    """(SQL statements, seconds) of one PATCH."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": op, "path": "members", "value": [{"$ref": None, "value": pk}]}],
    }
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        response = scim.send("patch", f"Groups/{gid}", body)
        took = time.perf_counter() - started
    if response.status_code != 204:
        raise SystemExit(f"PATCH {op}: {response.status_code} {response.content[:200]}")
    return len(queries.captured_queries), took


def measure(scim: Scim, groups: dict[int, str], pk: str, rounds: int) -> dict:
    """(size, op) → (SQL statements, median ms). The sizes alternate within
    each round (the order flipped every round), so the machine's drift
    falls on all of them alike; the first round warms."""
    times: dict[tuple[int, str], list[float]] = {}
    statements: dict[tuple[int, str], int] = {}
    sizes = sorted(groups)
    for round_ in range(rounds + 1):
        for size in sizes if round_ % 2 else reversed(sizes):
            for op in ("Add", "Remove"):
                sql, took = patch_once(scim, groups[size], pk, op)
                statements[size, op] = sql
                if round_:
                    times.setdefault((size, op), []).append(took)
    return {key: (statements[key], statistics.median(times[key]) * 1000) for key in times}


def run(args) -> Result:
    token, client = setup_django(args)
    scim = Scim(token)
    created = scim.send(
        "post",
        "Users",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "newcomer@bench.example",
            "externalId": "e-newcomer",
            "name": {"givenName": "New", "familyName": "Comer"},
            "active": True,
        },
    )
    if created.status_code != 201:
        raise SystemExit(f"POST /Users: {created.status_code} {created.content[:200]}")
    pk = created.json()["id"]
    table = Table(
        "SCIM membership PATCH, in-process",
        ["members", "operation", "SQL statements", "median ms"],
    )
    figures, notes, counts, groups = [], [], set(), {}
    for size in sorted(args.sizes):
        started = time.perf_counter()
        groups[size] = seed_group(client, size)
        notes.append(f"seeded a group of {size:,} in {time.perf_counter() - started:.1f} s")
    for (size, op), (sql, median_ms) in sorted(measure(scim, groups, pk, args.rounds).items()):
        table.rows.append([f"{size:,}", op, sql, f"{median_ms:.1f}"])
        figures.append({"members": size, "op": op, "sql": sql, "median_ms": median_ms})
        counts.add((op, sql))
    grows = len(counts) != 2
    notes.append(
        f"{stack.describe(dict(os.environ))}; {args.rounds} rounds a size. "
        + ("The statements grow with the group." if grows else "Same statements at every size.")
    )
    return Result(
        "scim-membership", tables=[table], figures={"patches": figures}, notes=notes, failed=grows
    )
