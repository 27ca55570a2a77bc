"""The worker waits out a database outage (issue 22, item 7): a real
`manage.py worker` process against a PostgreSQL database of its own, which
is made unavailable (new connections refused, open ones terminated) and
brought back; a mail queued after the recovery is sent, and the outage is
one warning line, not a traceback."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.servers import ROOT, manage
from tests.support.pg import cut, own_database, postgres_only

pytestmark = postgres_only

EMAIL = "outage@shop.example"


@pytest.fixture
def database():
    with own_database("iam_ops_worker") as (name, url):
        yield name, url


def _queue_reset_link(env: dict) -> None:
    manage(
        env,
        "shell",
        "-c",
        "from accounts.audit import Actor; from accounts.mail import queue_password_link; "
        "from accounts.models import User; "
        f"queue_password_link(by=Actor(site='http://t.example'), "
        f"user=User.objects.get(email='{EMAIL}'), kind='password_reset')",
    )


def _mails(folder: Path) -> int:
    return sum(EMAIL in f.read_text() for f in folder.iterdir())


def _wait(check, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def test_the_worker_waits_for_the_database_and_sends_what_is_queued_after(database, tmp_path):
    name, url = database
    outbox = tmp_path / "mail"
    outbox.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("CACHE_URL",)}
    env.update(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="iam.settings",
        DJANGO_SECRET_KEY="worker-outage-" + "s" * 40,
        EMAIL_URL=f"filemail:///{outbox}",  # environ drops one slash
        IAM_MAINTENANCE_EVERY="off",
        DJANGO_LOG_LEVEL="INFO",
    )
    manage(env, "migrate", "-v0")
    manage(env, "createuser", "--email", EMAIL, "--first-name", "O", "--last-name", "U",
           "--no-password")  # fmt: skip
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "worker", "--interval", "0.2"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _queue_reset_link(env)
        assert _wait(lambda: _mails(outbox) == 1, 30), log.read_text()

        cut(name, allow=False)
        time.sleep(4)  # several failed attempts
        assert worker.poll() is None, log.read_text()

        cut(name, allow=True)
        _queue_reset_link(env)
        assert _wait(lambda: _mails(outbox) == 2, 45), log.read_text()
        assert worker.poll() is None
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    text = log.read_text()
    assert text.count("database unavailable") == 1, text
    assert text.count("database reachable again") == 1, text
    assert "Traceback" not in text, text
