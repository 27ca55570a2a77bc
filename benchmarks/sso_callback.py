"""What our SSO callback costs on top of the identity provider.

    .venv/bin/python benchmarks/sso_callback.py [--logins 200]

Runs the whole flow in-process (login POST, provider authorization, callback)
against the loopback fake provider of tests/oidc_fake.py on a fresh SQLite
database (or DATABASE_URL), and times the callback. Outbound calls are timed
where they leave our code (sso.metadata.http), so "added" is the callback
minus the provider's own time: token-code exchange, ID token checks, user
lookup, login and session writes.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "iam.settings")
os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver"
os.environ["DJANGO_SECURE_SSL_REDIRECT"] = "false"
os.environ["DJANGO_LOG_LEVEL"] = "WARNING"
os.environ["DJANGO_STATICFILES_STORAGE"] = "django.contrib.staticfiles.storage.StaticFilesStorage"
if "DATABASE_URL" not in os.environ:
    os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp()}/sso-bench.sqlite3"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--logins", type=int, default=200)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    from accounts.models import User
    from sso import metadata
    from tests.oidc_fake import FakeIdP

    call_command("migrate", verbosity=0)
    idp = FakeIdP()
    settings.IAM_SSO_PROVIDERS = {"fake": idp.oidc_config()}
    from sso.registry import providers

    providers.cache_clear()
    User.objects.filter(email="ada@shop.example").delete()
    User.objects.create_user("ada@shop.example", first_name="Ada", last_name="Lovelace")

    outbound = {"seconds": 0.0, "calls": Counter()}
    real_http = metadata.http

    def timed_http(method, url, provider_name, **kwargs):
        t0 = time.perf_counter()
        try:
            return real_http(method, url, provider_name, **kwargs)
        finally:
            outbound["seconds"] += time.perf_counter() - t0
            outbound["calls"][url.rsplit("/", 1)[-1] or url] += 1

    metadata.http = timed_http
    claims = {
        "sub": "ada-sub",
        "email": "ada@shop.example",
        "email_verified": True,
        "given_name": "Ada",
        "family_name": "Lovelace",
    }

    def one_login():
        client = Client()
        location = client.post("/sso/fake/login/")["Location"]
        callback = idp.authorize(location, claims)
        outbound["seconds"] = 0.0
        t0 = time.perf_counter()
        response = client.get(callback)
        total = time.perf_counter() - t0
        assert response.status_code == 302 and response["Location"] == "/", response
        return total, outbound["seconds"]

    one_login()  # warm-up: discovery and keys land in the cache
    outbound["calls"].clear()
    totals, idp_times = [], []
    for _ in range(args.logins):
        total, idp_time = one_login()
        totals.append(total)
        idp_times.append(idp_time)
    added = [t - i for t, i in zip(totals, idp_times, strict=True)]
    per_login = {k: v / args.logins for k, v in outbound["calls"].items()}
    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    print(f"database                     {engine}")
    print(f"logins after warm-up         {args.logins}")
    print(f"outbound calls per login     {per_login}")
    print(f"median callback ms           {statistics.median(totals) * 1000:.2f}")
    print(f"median provider (token) ms   {statistics.median(idp_times) * 1000:.2f}")
    print(f"median added by us ms        {statistics.median(added) * 1000:.2f}")
    print(f"p95 added by us ms           {sorted(added)[int(len(added) * 0.95) - 1] * 1000:.2f}")
    idp.close()


if __name__ == "__main__":
    main()
