"""What a served benchmark needs besides the server: the environment of a
production run, a database and a cache of its own, and its users.

Every run starts from nothing: the PostgreSQL database is dropped and made
anew and its Redis db flushed, then migrated and seeded through the served
tree's own `manage.py` (so an old commit in a worktree is seeded by its own
code). Settings a benchmark depends on are set here, not left to the shell:
MFA is required of no group (IAM_MFA_REQUIRED_GROUPS empty), or every page of
the simulated admins would be a 302 to the MFA set-up, and the failed-login
throttle is opened wide, since thousands of logins come from few addresses.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from benchmarks.results import ROOT

DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/iam_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/8"
ADMIN = "admin@bench.example"
PASSWORD = "bench passphrase one two"  # noqa: S105 - a throwaway local account


def add_arguments(parser) -> None:
    group = parser.add_argument_group("database and cache")
    group.add_argument(
        "--postgres",
        default=DEFAULT_POSTGRES,
        metavar="URL",
        help="base URL; each run uses <URL>_<benchmark>[_<side>], dropped and made anew "
        "(default %(default)s)",
    )
    group.add_argument(
        "--redis",
        default=DEFAULT_REDIS,
        metavar="URL",
        help="Redis db of the run (a second side uses the next db number), flushed first "
        "(default %(default)s)",
    )
    group.add_argument(
        "--sqlite", action="store_true", help="SQLite and per-process memory cache instead"
    )


def backend(args, name: str, side: int = 0) -> dict[str, str]:
    """DATABASE_URL and CACHE_URL for one side of a run."""
    if args.sqlite:
        return {"DATABASE_URL": f"sqlite:///{tempfile.mkdtemp()}/{name}.sqlite3"}
    parts = urlsplit(args.redis)
    db = int(parts.path.lstrip("/") or 0) + side
    return {
        "DATABASE_URL": f"{args.postgres}_{name.replace('-', '_')}",
        "CACHE_URL": parts._replace(path=f"/{db}").geturl(),
    }


def describe(env: dict[str, str]) -> str:
    database = "PostgreSQL" if env["DATABASE_URL"].startswith("postgres") else "SQLite"
    cache = "Redis" if env.get("CACHE_URL", "").startswith("redis") else "local memory"
    return f"{database} / {cache}"


def server_env(urls: dict[str, str], **overrides: str) -> dict[str, str]:
    """The environment of a production server on loopback: DEBUG off, a
    trusted proxy at 127.0.0.1 (clients send X-Forwarded-For/-Proto as
    nginx does), no MFA requirement, wide login throttles."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN_", "GRANIAN_"))}
    env.pop("CACHE_URL", None)
    env.update(
        DJANGO_SETTINGS_MODULE="iam.settings",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="bench-" + "k" * 60,
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_STATICFILES_STORAGE="django.contrib.staticfiles.storage.StaticFilesStorage",
        DJANGO_LOG_LEVEL="WARNING",
        IAM_TRUSTED_PROXIES="127.0.0.1",
        IAM_MFA_REQUIRED_GROUPS="",
        IAM_RATE_LOGIN="100000/m/ip",
        IAM_RATE_LOGIN_FAILED="100000/m/ip,100000/m/key",
        EMAIL_URL="dummymail://",
    )
    env.update(urls)
    env.update(overrides)
    return env


def manage(env: dict[str, str], *args: str, stdin: str | None = None, root: Path = ROOT) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=root,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"manage.py {args[0]} failed in {root}:\n{result.stderr}")
    return result.stdout


def reset_backends(env: dict[str, str], root: Path = ROOT) -> None:
    """A new database, a copy of `root`'s migrated template (see template()),
    and the Redis db flushed. The caller still runs `migrate`: a no-op on the
    copy, but its post-migrate steps run as on a fresh database."""
    url = env["DATABASE_URL"]
    made = template(env, root)
    if url.startswith("postgres"):
        import psycopg

        name = _database_name(url)
        with psycopg.connect(_admin_url(url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{made}"')
    else:
        shutil.copyfile(made, urlsplit(url).path)
    if env.get("CACHE_URL", "").startswith("redis"):
        import redis

        redis.Redis.from_url(env["CACHE_URL"]).flushdb()


def template(env: dict[str, str], root: Path = ROOT) -> str:
    """A database migrated by `root`'s own `migrate`, made once per state of
    its migrations (and Django's version) and copied for every run: migrating
    a fresh database is most of a short run's time (10-15 s here).
    PostgreSQL: a database iam_bench_template_<key> beside the run's (never
    connected to after it is made, as CREATE DATABASE … TEMPLATE requires);
    SQLite: a file in the temporary directory. Returns its name or path."""
    key = migrations_key(root)
    url = env["DATABASE_URL"]
    if not url.startswith("postgres"):
        folder = Path(tempfile.gettempdir()) / "iam-bench-templates"
        folder.mkdir(exist_ok=True)
        final = folder / f"{key}.sqlite3"
        if not final.exists():
            building = folder / f"{key}.{os.getpid()}.sqlite3"
            manage({**env, "DATABASE_URL": f"sqlite:///{building}"}, "migrate", "-v0", root=root)
            os.replace(building, final)  # atomic: a concurrent run finds it whole or not
        return str(final)
    import psycopg

    final = f"iam_bench_template_{key}"
    building = f"{final}_{os.getpid()}"
    with psycopg.connect(_admin_url(url), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [final]).fetchone():
            return final
        conn.execute(f'DROP DATABASE IF EXISTS "{building}"')
        conn.execute(f'CREATE DATABASE "{building}"')
    there = urlsplit(url)._replace(path=f"/{building}").geturl()
    manage({**env, "DATABASE_URL": there}, "migrate", "-v0", root=root)
    with psycopg.connect(_admin_url(url), autocommit=True) as conn:
        try:
            conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{final}"')
        except psycopg.errors.DuplicateDatabase:  # a concurrent run made it first
            conn.execute(f'DROP DATABASE "{building}"')
    return final


def migrations_key(root: Path) -> str:
    """What a migrated database depends on: every migration file of the
    tree and Django's version."""
    import django

    digest = hashlib.sha256(django.__version__.encode())
    for path in sorted(root.glob("*/migrations/*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _database_name(url: str) -> str:
    name = urlsplit(url).path.lstrip("/")
    if not name.startswith("iam_bench"):
        raise SystemExit(f"refusing to drop {name!r}: benchmark databases start with iam_bench")
    return name


def _admin_url(url: str) -> str:
    return urlsplit(url)._replace(path="/postgres").geturl()


SEED = """
import json, sys
from accounts.models import Group, User
from accounts.services import user_create
try:
    from accounts.audit import Actor
    by = {"by": Actor.system(label="benchmark")}
except ImportError:  # a tree from before Actor (a base commit of `ab`)
    by = {}
spec = json.load(sys.stdin)
for email, password, groups in spec["users"]:
    user_create(email=email, first_name="Bench", last_name="User", password=password,
                groups=list(Group.objects.filter(name__in=groups)), via="benchmark", **by)
staff = list(Group.objects.filter(name="backoffice-users"))
for n in range(spec["filler"]):
    user_create(email=f"user{n}@bench.example", first_name=f"First{n}", last_name=f"Last{n}",
                groups=staff, via="benchmark", **by)
"""


def prepare(
    env: dict[str, str],
    users: list[tuple[str, str, list[str]]] = ((ADMIN, PASSWORD, ["root"]),),
    filler: int = 0,
    root: Path = ROOT,
) -> None:
    """A fresh database and cache, migrated, with `users` ((email, password,
    group names) each; by default one admin in `root`) and `filler` more
    users without a password in backoffice-users, for the users list."""
    reset_backends(env, root=root)
    manage(env, "migrate", "-v0", root=root)
    spec = json.dumps({"users": [list(u) for u in users], "filler": filler})
    manage(env, "shell", "-c", SEED, stdin=spec, root=root)


def password_hash(env: dict[str, str], email: str, root: Path = ROOT) -> str:
    """The stored hash of a user: what the server verifies at each login."""
    code = f"from accounts.models import User; print(User.objects.get(email={email!r}).password)"
    return manage(env, "shell", "-c", code, root=root).split()[-1]
