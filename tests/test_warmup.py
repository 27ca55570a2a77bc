"""A fresh app server is warm before it answers (issue 22, item 7: the first
logins on new workers took 2.5 s while /readyz said 200; iam.warmup).
Measured by `python -m benchmarks.first_login`; here: the warm-up ran,
rendered the login page in every language, and finished before the server
answered its first request."""

import os

import requests

from tests.servers import migrated_sqlite, started


def test_a_fresh_server_warms_up_before_its_first_answer(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CACHE_URL")}
    env.update(
        DATABASE_URL=migrated_sqlite(tmp_path / "iam.sqlite3"),
        DJANGO_SETTINGS_MODULE="iam.settings",
        DJANGO_SECRET_KEY="warmup-" + "s" * 40,
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_LOG_LEVEL="INFO",
        DJANGO_STATICFILES_STORAGE="django.contrib.staticfiles.storage.StaticFilesStorage",
    )
    with started(env) as (server,):
        assert requests.get(server.base + "/login/", timeout=10).status_code == 200
        log = server.log.read_text()
    assert "iam.warmup" in log and "warmed in" in log, log[-3000:]
    warmed = log.index("warmed in")
    assert "(login page: 200,200)" in log[warmed:].splitlines()[0]
    assert warmed < log.index("/readyz")  # before the first answer
    assert "warm-up failed" not in log
