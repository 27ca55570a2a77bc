"""Argon2id: the CPU of one password verification at the project's parameters.

The floor of every password login: each login with a known email pays one.
The hash is made by the project's own first password hasher (iam.settings),
so the parameters are the ones in force; this runs in this process, no
server, no database.
"""

from __future__ import annotations

import os
import resource
import statistics
import time

from benchmarks.results import Result, Table, ms

SECRET = "correct horse battery staple"  # noqa: S105


def add_arguments(parser) -> None:
    parser.add_argument("--rounds", type=int, default=50)


def project_hash(password: str = SECRET) -> str:
    """A hash as the project's first PASSWORD_HASHER makes it."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "iam.settings")
    import django

    django.setup()
    from django.contrib.auth.hashers import make_password

    return make_password(password)


def verifier(encoded: str, password: str = SECRET):
    """A function verifying `password` against a Django argon2 hash, as
    Django's Argon2PasswordHasher does (the parameters come from the hash)."""
    import argon2

    algorithm, rest = encoded.split("$", 1)
    if algorithm != "argon2":
        raise SystemExit(f"not an argon2 hash: {algorithm}")
    hasher = argon2.PasswordHasher()
    return lambda: hasher.verify("$" + rest, password)


def run(args) -> Result:
    encoded = project_hash()
    verify = verifier(encoded)
    verify()  # warm-up
    wall, cpu = [], []
    for _ in range(args.rounds):
        c0, w0 = time.process_time(), time.perf_counter()
        verify()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    parameters = " ".join(encoded.split("$")[2:4])
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    table = Table(
        "one Argon2id verification",
        ["parameters", "median wall", "median CPU", "verifications/s per core", "peak RSS"],
        [
            [
                parameters,
                ms(statistics.median(wall)),
                ms(statistics.median(cpu)),
                f"{1 / statistics.median(cpu):.0f}",
                f"{rss:.0f} MiB",
            ]
        ],
    )
    return Result(
        "argon2",
        tables=[table],
        figures={
            "parameters": parameters,
            "median_cpu_s": statistics.median(cpu),
            "median_wall_s": statistics.median(wall),
        },
    )
