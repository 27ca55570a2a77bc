"""Ends of privileged access are recorded by the running worker within a
minute (issue 23): a time-bound membership ending 2 s from now is audited
`membership.expired` exactly once, and its mail is sent, even with two
workers running. Real `manage.py worker` processes on a database of their
own (a file on SQLite; the test database on PostgreSQL)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.servers import ROOT, manage, migrated_sqlite

SETUP = """
from datetime import timedelta
from django.utils import timezone
from accounts.models import Group, Membership, User
user = User.objects.create_user(email="temp@shop.example", first_name="Tem", last_name="P")
group = Group.objects.create(name="contractors")
Membership.objects.create(user=user, group=group, ends_at=timezone.now() + timedelta(seconds=2))
"""

STATE = """
import json
from django_tasks_db.models import DBTaskResult
from accounts.models import AuditEvent, Membership
print(json.dumps({
    "expired": list(AuditEvent.objects.filter(action="membership.expired")
                    .values_list("target_label", flat=True)),
    "left": Membership.objects.filter(group__name="contractors").count(),
    "mails": [(r.status, r.args_kwargs["kwargs"]["mail"]["to"],
               r.args_kwargs["kwargs"]["mail"]["context"].get("event"))
              for r in DBTaskResult.objects.all()],
}))
"""


@pytest.fixture
def database(tmp_path, request):
    """The URL of a migrated database the worker processes share."""
    if connection.vendor == "postgresql":
        request.getfixturevalue("transactional_db")
        db = settings.DATABASES["default"]
        auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
        return f"postgres://{auth}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    return migrated_sqlite(tmp_path / "worker.sqlite3")


def _env(url: str) -> dict:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DJANGO_SETTINGS_MODULE": "iam.settings",
        "DATABASE_URL": url,
        "EMAIL_URL": "consolemail://",
        # The cleanup is off: the ends are recorded on their own schedule.
        "IAM_MAINTENANCE_EVERY": "off",
    }


def _state(env: dict) -> dict:
    return json.loads(manage(env, "shell", "-c", STATE).stdout.strip().splitlines()[-1])


def test_two_running_workers_record_an_end_once_and_mail_it(database, tmp_path):
    env = _env(database)
    logs = [tmp_path / f"worker-{n}.log" for n in range(2)]
    workers = []
    try:
        for log in logs:
            with Path(log).open("wb") as out:
                workers.append(
                    subprocess.Popen(
                        [sys.executable, "manage.py", "worker", "--interval", "0.2"]
                        + ["--expiry-every", "0.3"],
                        cwd=ROOT,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        manage(env, "shell", "-c", SETUP)
        deadline = time.monotonic() + 30
        state = _state(env)
        while time.monotonic() < deadline and not (
            state["expired"] and all(status == "SUCCESSFUL" for status, *_ in state["mails"])
        ):
            time.sleep(0.5)
            state = _state(env)
        time.sleep(1.5)  # both workers swept again since
        state = _state(env)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)
    output = "".join(log.read_text() for log in logs)
    assert all(w.poll() is not None for w in workers)
    assert state["expired"] == ["temp@shop.example"], output[-3000:]
    assert state["left"] == 0
    assert state["mails"] == [["SUCCESSFUL", "temp@shop.example", "membership_ended"]], output
    assert "has reached its end" in output  # the console backend printed the mail
    assert output.count("worker: recorded 1 ended") == 1, output[-3000:]
    assert "Traceback" not in output
