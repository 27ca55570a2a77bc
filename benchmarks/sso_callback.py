"""SSO callback: what our code adds to an OpenID login on top of the provider's time.

In-process (Django's test client, no server) against the loopback provider
of benchmarks/fake_idp.py, after one warm-up login (discovery and keys are
then cached): the login POST, the provider's authorization, the callback.
Outbound calls are timed where they leave our code (sso.metadata.http), so
"added by us" is the callback's time minus the provider's: the code
exchange, ID token checks, user lookup, login and session writes.
"""

from __future__ import annotations

import os
import statistics
import time
from collections import Counter

from benchmarks import stack
from benchmarks.fake_idp import FakeIdP
from benchmarks.results import Result, Table, ms

CLAIMS = {
    "sub": "ada-sub",
    "email": "ada@bench.example",
    "email_verified": True,
    "given_name": "Ada",
    "family_name": "Lovelace",
}


def add_arguments(parser) -> None:
    parser.add_argument("--logins", type=int, default=200)
    stack.add_arguments(parser)


def timed_outbound():
    """Wrap sso.metadata.http; returns the dict it fills."""
    from sso import metadata

    outbound = {"seconds": 0.0, "calls": Counter()}
    real_http = metadata.http

    def timed_http(method, url, provider_name, **kwargs):
        t0 = time.perf_counter()
        try:
            return real_http(method, url, provider_name, **kwargs)
        finally:
            outbound["seconds"] += time.perf_counter() - t0
            outbound["calls"][url.rsplit("/", 1)[-1]] += 1

    metadata.http = timed_http
    return outbound


def run(args) -> Result:
    idp = FakeIdP()
    env = stack.server_env(stack.backend(args, "sso_callback"), **idp.env())
    stack.reset_backends(env)
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    from accounts.models import User

    call_command("migrate", verbosity=0)
    User.objects.create_user(CLAIMS["email"], first_name="Ada", last_name="Lovelace")
    outbound = timed_outbound()

    def one_login() -> tuple[float, float]:
        client = Client()
        location = client.post("/sso/fake/login/", secure=True)["Location"]
        callback = idp.authorize(location, CLAIMS)
        outbound["seconds"] = 0.0
        t0 = time.perf_counter()
        response = client.get(callback, secure=True)
        total = time.perf_counter() - t0
        if response.status_code != 302 or response["Location"] != "/":
            raise SystemExit(f"SSO login failed: {response.status_code} {response.get('Location')}")
        return total, outbound["seconds"]

    one_login()  # warm-up: discovery and keys land in the cache
    outbound["calls"].clear()
    totals, provider = zip(*(one_login() for _ in range(args.logins)), strict=True)
    idp.close()
    added = sorted(t - p for t, p in zip(totals, provider, strict=True))
    calls = ", ".join(f"{k}: {v / args.logins:g}" for k, v in outbound["calls"].items())
    p95 = added[int(len(added) * 0.95) - 1]
    table = Table(
        f"SSO callback, {stack.describe(env)}, {args.logins} logins after warm-up",
        ["outbound calls per login", "median callback", "provider", "added by us", "added, p95"],
        [
            [
                calls,
                ms(statistics.median(totals)),
                ms(statistics.median(provider)),
                ms(statistics.median(added)),
                ms(p95),
            ]
        ],
    )
    figures = {
        "median_callback_s": statistics.median(totals),
        "median_provider_s": statistics.median(provider),
        "median_added_s": statistics.median(added),
        "p95_added_s": p95,
        "outbound_per_login": {k: v / args.logins for k, v in outbound["calls"].items()},
    }
    return Result("sso-callback", tables=[table], figures=figures)
