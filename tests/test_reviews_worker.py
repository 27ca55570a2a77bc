"""The running worker ends and applies an access review at its end, and
starts a recurring review's next instance (issue 24): two real `manage.py
worker` processes on one database, each thing done once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import worker_env
from tests.servers import ROOT, manage

# A marked test: on PostgreSQL only then does the run switch to its test
# database before the fixture reads its name (else the workers would write
# into the developer's database named by DATABASE_URL).
pytestmark = pytest.mark.django_db(transaction=True)

SETUP = """
from datetime import timedelta
from django.utils import timezone
from accounts.audit import Actor
from accounts.models import Group, Membership, Role, Rule, User
from reviews.models import AccessReview
from reviews.services import review_start
owner = User.objects.create_user(email="owner@shop.example", first_name="O", last_name="W")
# The seeded root (a PostgreSQL test database is emptied between tests).
admin_role, _ = Role.objects.get_or_create(name="administrator")
Rule.objects.get_or_create(role=admin_role, effect="allow", pattern="*:*:*")
root, _ = Group.objects.get_or_create(name="root")
root.roles.add(admin_role)
Membership.objects.create(user=owner, group=root)
role = Role.objects.create(name="viewer")
Rule.objects.create(role=role, effect="allow", pattern="backoffice:users:view")
group = Group.objects.create(name="contractors")
group.roles.add(role)
ada = User.objects.create_user(email="ada@shop.example", first_name="Ada", last_name="L")
Membership.objects.create(user=ada, group=group)
review = review_start(
    name="Monthly contractors", group=group, reviewer_mode="self", recurrence="monthly",
    duration_days=7, default="revoke", auto_apply=True, by=Actor(user=owner, channel="web"),
    starts_at=timezone.now() - timedelta(days=31),
)
AccessReview.objects.filter(pk=review.pk).update(ends_at=timezone.now() + timedelta(seconds=2))
"""

STATE = """
import json
from accounts.models import AuditEvent, Membership
from reviews.models import AccessReview
print(json.dumps({
    "events": sorted(AuditEvent.objects.filter(action__startswith="review.")
                     .values_list("action", flat=True)),
    "left": Membership.objects.filter(group__name="contractors").count(),
    "reviews": sorted(AccessReview.objects.values_list("status", flat=True)),
}))
"""


def _state(env: dict) -> dict:
    return json.loads(manage(env, "shell", "-c", STATE).stdout.strip().splitlines()[-1])


def test_two_running_workers_end_apply_and_recur_once(worker_database, tmp_path):
    env = worker_env(worker_database)
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
        try:
            manage(env, "shell", "-c", SETUP)
        except subprocess.CalledProcessError as exc:
            raise AssertionError(exc.stderr[-3000:]) from None
        deadline = time.monotonic() + 30
        state = _state(env)
        while time.monotonic() < deadline and len(state["reviews"]) < 2:
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
    assert state["reviews"] == ["active", "applied"], output[-3000:]
    assert state["left"] == 0
    assert state["events"] == [
        "review.applied",
        "review.ended",
        "review.started",  # the first, by the setup
        "review.started",  # the next month's, by a worker
    ], output[-3000:]
    assert "Traceback" not in output
